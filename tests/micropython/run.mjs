// Runs a Python script under the real MicroPython interpreter (WebAssembly build) on Node.js.
// usage: node run.mjs SCRIPT.py [MODULE.py|DATA.json ...]
// Each extra file is copied into the interpreter's /lib (modules) so the script can import
// or open('/lib/NAME') it. Exit code 0 if the script finished, 1 if it raised.
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

const [script, ...files] = process.argv.slice(2);
if (!script) {
  console.error("usage: node run.mjs SCRIPT.py [FILE ...]");
  process.exit(2);
}
const mp = await loadMicroPython({
  heapsize: 8 * 1024 * 1024,
  stdout: (line) => process.stdout.write(line + "\n"),
  stderr: (line) => process.stderr.write(line + "\n"),
});
try { mp.FS.mkdir("/lib"); } catch (e) { /* exists */ }
for (const f of files) {
  mp.FS.writeFile("/lib/" + basename(f), readFileSync(f));
}
try {
  mp.runPython("import sys\nif '/lib' not in sys.path: sys.path.append('/lib')\n");
  mp.runPython(readFileSync(script, "utf8"));
} catch (e) {
  console.error(String(e && e.message ? e.message : e));
  process.exit(1);
}
