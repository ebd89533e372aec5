"""The benchmark scripts read the records that benchmarks/RESULTS.md cites."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_plain_scoring_reports_a_record_made_before_a_variant_existed(tmp_path):
    # plain_scoring_q6.json / plain_scoring_ce2x.json were written before 'anchor z-norm' existed
    rows = {f"run{i}": {"plain": 30.0 + i, "step": 40.0, "seen-span anchors": 31.0 + i,
                        "train-mean centring": 29.0 + 2 * i, "step, seen-span anchors": 41.0 - i}
            for i in range(3)}
    f = tmp_path / "plain_scoring_old.json"
    f.write_text(json.dumps(rows))
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "select_plain_scoring.py"), "--from-json", str(f)],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert "3 models; plain 31.00, step 40.00" in res.stdout
    assert "| plain, seen-span anchors | 32.00 | +1.00" in res.stdout
    assert "| plain, train-mean centring | 31.00 |" in res.stdout
    assert "anchor z-norm" not in res.stdout
