"""`racer bench train`'s machine figures: the hypervisor's share of CPU time."""

from __future__ import annotations

from tools.bench_train import steal_pct


def test_steal_pct_is_the_steal_share_of_all_cpu_time():
    # user nice system idle iowait irq softirq steal
    before = [100, 0, 10, 500, 0, 0, 0, 40]
    after = [300, 0, 30, 700, 0, 0, 0, 140]
    # 100 of the 520 ticks that passed went to other guests.
    assert steal_pct(before, after) == round(100 * 100 / 520, 1)


def test_steal_pct_unknown_without_proc_stat():
    assert steal_pct(None, [1] * 8) is None
    assert steal_pct([1] * 8, [1] * 8) is None
