"""Analysis of training, evaluation and car logs: `racer analyze`, `compare`, `race`,
`eval --sweep`.

Modules, one noun each:
- `logs`: find and load a run folder (openracer run, deepracer-for-cloud single or multi
  worker, AWS console export, DeepRacer-on-AWS export) into pandas tables with the column
  names deepracer-utils uses;
- `episodes`: per-episode and per-iteration summaries (progress, reward, lap times, status);
- `outline`: the track outline and racing line drawn under positions;
- `plots`: the PNG figures (matplotlib, Agg backend);
- `report`: the self-contained HTML report writer;
- `training_report`: `racer analyze` on a training/evaluation run;
- `carlog`: car run logs from `racer drive` (latency, deadline misses, link, battery,
  steering and throttle) and their report;
- `replay`: MP4 writing (frames with the model's actions overlaid, laps over the track).

Everything imports matplotlib lazily with the Agg backend; nothing here opens a window.
"""
