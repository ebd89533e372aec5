"""GZSL evaluation on score matrices: calibrated stacking, Flora's ratio gate, threshold search."""
from __future__ import annotations

import numpy as np
import pytest

from zeroskel.errors import ConfigError, DataError
from zeroskel.eval.gzsl import (calibrated_stacking_predict, choose_threshold, gate_predict, gate_ratio,
                                gzsl_eval, stacking_margin, zsl_accuracy)
from zeroskel.eval.protocol import calibrate, evaluate_scores

# columns: seen 0, 1; unseen 2, 3.  Rows: true classes 0, 1, 2, 3, 2
CLASSES = [0, 1, 2, 3]
SCORES = np.array([[5.0, 1.0, 4.0, 0.0],    # seen margin +1 -> right while gamma < 1
                   [1.0, 3.0, 0.0, 0.5],    # margin +2.5
                   [4.0, 0.0, 3.0, 1.0],    # unseen sample, seen bias 1 -> right once gamma >= 1
                   [0.0, 2.5, 1.0, 2.0],    # margin +0.5 -> right once gamma >= 0.5
                   [0.0, 0.0, 2.0, 1.0]])   # margin -2 -> right always
LABELS = np.array([0, 1, 2, 3, 2])


def test_calibrated_stacking_by_hand():
    assert calibrated_stacking_predict(SCORES, CLASSES, [0, 1], [2, 3], 0.0).tolist() == [0, 1, 0, 1, 2]
    assert calibrated_stacking_predict(SCORES, CLASSES, [0, 1], [2, 3], 0.75).tolist() == [0, 1, 0, 3, 2]
    assert calibrated_stacking_predict(SCORES, CLASSES, [0, 1], [2, 3], 1.5).tolist() == [2, 1, 2, 3, 2]
    r = gzsl_eval(SCORES, LABELS, CLASSES, [0, 1], [2, 3], gamma=0.75)
    assert r["S"] == 100.0 and r["U"] == pytest.approx(200 / 3) and r["H"] == pytest.approx(80.0)
    # equals argmax of the shifted matrix away from ties
    shifted = SCORES - 0.75 * np.isin(CLASSES, [0, 1])
    assert np.array(CLASSES)[shifted.argmax(1)].tolist() == [0, 1, 0, 3, 2]


def test_choose_threshold_picks_best_h_and_never_sees_test():
    best = choose_threshold(SCORES, LABELS, CLASSES, [0, 1], [2, 3])
    # gamma in (0.5, 1) keeps both seen right and gets 2/3 unseen: H = 80; gamma > 1 loses sample 0
    assert 0.5 < best["gamma"] < 1.0 and best["H"] == pytest.approx(80.0)
    # exhaustive check against a dense grid on random problems
    rng = np.random.default_rng(0)
    for _ in range(5):
        sc = rng.normal(size=(60, 7)); y = rng.integers(0, 7, 60); y[:2] = [0, 6]
        seen, unseen = [0, 1, 2, 3], [4, 5, 6]
        got = choose_threshold(sc, y, range(7), seen, unseen)
        # H only changes where gamma crosses a sample's margin: try just either side of each
        m = np.sort(sc[:, :4].max(1) - sc[:, 4:].max(1))
        grid = max(gzsl_eval(sc, y, range(7), seen, unseen, gamma=g)["H"]
                   for g in np.concatenate([m - 1e-9, m + 1e-9]))
        assert got["H"] == pytest.approx(grid, abs=1e-9)
        assert gzsl_eval(sc, y, range(7), seen, unseen, gamma=got["gamma"])["H"] == pytest.approx(got["H"])


def test_ratio_gate_by_hand():
    err = np.array([[1.0, 4.0, 2.0, 3.0],     # r = 1/2 = 0.5
                    [3.0, 2.0, 8.0, 2.5],     # r = 2/2.5 = 0.8
                    [1.0, 5.0, 4.0, 9.0]])    # r = 0.25
    r = gate_ratio(-err, CLASSES, [0, 1], [2, 3])
    np.testing.assert_allclose(r, [0.5, 0.8, 0.25])
    # Flora: unseen iff r > gamma
    assert gate_predict(-err, CLASSES, [0, 1], [2, 3], 0.75).tolist() == [0, 3, 0]
    assert gate_predict(-err, CLASSES, [0, 1], [2, 3], 0.4).tolist() == [2, 3, 0]
    best = choose_threshold(-err, [2, 3, 0], CLASSES, [0, 1], [2, 3], rule="gate")
    assert best["H"] == 100.0 and 0.25 < best["gamma"] < 0.5
    with pytest.raises(ConfigError, match="negated non-negative errors"):
        gate_ratio(SCORES, CLASSES, [0, 1], [2, 3])


def test_zsl_and_report_shapes():
    assert zsl_accuracy(SCORES[2:, 2:], LABELS[2:], [2, 3]) == pytest.approx(100.0)
    cal = calibrate(SCORES, LABELS, CLASSES, [0, 1], [2, 3])
    rep = evaluate_scores(zsl_scores=SCORES[2:, 2:], zsl_labels=LABELS[2:], unseen=[2, 3], gzsl_scores=SCORES,
                          gzsl_labels=LABELS, classes=CLASSES, seen=[0, 1],
                          stacking_gamma=cal["stacking"]["gamma"])
    assert rep["zsl"] == 100.0 and rep["gzsl"]["stacking"]["H"] == pytest.approx(80.0)
    assert rep["gzsl"]["uncalibrated"]["U"] == pytest.approx(100 / 3)
    assert "gate" not in rep["gzsl"]


def test_bad_inputs():
    with pytest.raises(DataError, match=r"scores must be \(N, K=3\)"):
        zsl_accuracy(SCORES, LABELS, [0, 1, 2])
    with pytest.raises(ConfigError, match="both seen and unseen"):
        gzsl_eval(SCORES, LABELS, CLASSES, [0, 1, 2], [2, 3])
    with pytest.raises(ConfigError, match="unknown GZSL rule 'foo'"):
        gzsl_eval(SCORES, LABELS, CLASSES, [0, 1], [2, 3], rule="foo")
    with pytest.raises(DataError, match="NaN"):
        zsl_accuracy(np.full((2, 2), np.nan), [2, 3], [2, 3])
    with pytest.raises(DataError, match="labels \\[7\\] are not among the scored classes"):
        zsl_accuracy(SCORES[:, 2:], [7, 2, 3, 2, 2], [2, 3])  # was a silent 0 for that sample


def test_metrics_refuse_what_they_would_miscount():
    from zeroskel.eval.metrics import (confusion_matrix, gzsl_scores, harmonic_mean, mean_class_accuracy,
                                       per_class_accuracy, top1)
    p, t = np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2])
    assert top1(p, t) == 75.0 and top1(p.astype(float), t) == 75.0
    assert confusion_matrix(p, t, [0, 1, 2]).tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    assert per_class_accuracy(list(p), list(t), [1, 2]) == {1: 50.0, 2: 100.0}  # lists work
    with pytest.raises(DataError, match="differ in shape"):
        confusion_matrix(p[:2], t, [0, 1, 2])                # zip counted only two pairs
    with pytest.raises(DataError, match="duplicate class ids"):
        confusion_matrix(p, t, [0, 1, 2, 2])
    with pytest.raises(DataError, match="1-D array of class ids"):
        top1(np.eye(3), np.eye(3))                           # was 100.0
    with pytest.raises(DataError, match="integer class ids"):
        top1(np.array([0.5, 1.0]), np.array([0, 1]))
    with pytest.raises(DataError, match="no class of 'classes' has a sample"):
        mean_class_accuracy(p, t, [7, 8])                    # was nan
    with pytest.raises(DataError, match="\\[0, 100\\]"):
        harmonic_mean(-50, 25)                               # was 100.0
    with pytest.raises(DataError, match="both seen and unseen"):
        gzsl_scores(p, t, [0, 1, 2], [2, 3])                 # was S = U = H = 100
    with pytest.raises(DataError, match="targets \\[2\\] are neither seen nor unseen"):
        gzsl_scores(p, t, [0], [1])                          # class-2 samples were dropped
    assert gzsl_scores(p, t, [0, 1], [2]) == {"S": pytest.approx(200 / 3), "U": 100.0, "H": pytest.approx(80.0)}


def test_pooled_threshold_equals_search_over_concatenated_samples():
    from zeroskel.eval.gzsl import choose_threshold_pooled
    rng = np.random.default_rng(3)
    a = (rng.normal(size=(40, 5)), rng.integers(0, 5, 40))
    b = (rng.normal(size=(30, 5)) + 0.5, rng.integers(0, 5, 30))
    seen, unseen = [0, 1, 2], [3, 4]
    for rule, shift in (("stacking", 0.0), ("gate", -10.0)):   # gate needs scores <= 0
        pa, pb = (a[0] + shift, a[1]), (b[0] + shift, b[1])
        one = choose_threshold_pooled([(*pa, CLASSES_5, seen, unseen)], rule=rule)
        assert one == choose_threshold(*pa, CLASSES_5, seen, unseen, rule=rule)
        pooled = choose_threshold_pooled([(*pa, CLASSES_5, seen, unseen), (*pb, CLASSES_5, seen, unseen)], rule=rule)
        cat = choose_threshold(np.vstack([pa[0], pb[0]]), np.concatenate([pa[1], pb[1]]), CLASSES_5, seen, unseen,
                               rule=rule)
        assert pooled == cat
    # problems with different class sets pool their samples too (each routed over its own classes)
    c = (rng.normal(size=(20, 4)), rng.integers(0, 4, 20) + 10)
    mixed = choose_threshold_pooled([(*a, CLASSES_5, seen, unseen), (*c, [10, 11, 12, 13], [10, 11], [12, 13])])
    assert 0.0 <= mixed["H"] <= 100.0
    with pytest.raises(ConfigError, match="no held-out problem"):
        choose_threshold_pooled([])


CLASSES_5 = [0, 1, 2, 3, 4]


def test_infinite_scores_route_the_same_in_search_and_prediction():
    """A row whose best seen and best unseen scores are the same infinity (all -inf: a method's
    log-probability underflowing) had the margin inf - inf = NaN: prediction sent it to unseen
    (NaN > gamma is false) while the threshold search counted it as seen, so the held-out S/U/H
    reported at the chosen gamma were not those that gamma gives. It is a tie (margin 0) now."""
    ninf = -np.inf
    sc = np.array([[ninf, ninf, ninf, ninf],   # label 2: margin 0 -> unseen (class 2) iff gamma >= 0
                   [1.0, 0.0, 0.0, 0.0],       # label 0: margin 1 -> right iff gamma < 1
                   [0.0, 0.0, 0.0, 2.0]])      # label 3: margin -2 -> right iff gamma >= -2
    y = [2, 0, 3]
    with np.errstate(all="raise"):  # no 'invalid value' warning either
        np.testing.assert_array_equal(stacking_margin(sc, CLASSES, [0, 1], [2, 3]), [0.0, 1.0, -2.0])
        assert calibrated_stacking_predict(sc, CLASSES, [0, 1], [2, 3], 0.5).tolist() == [2, 0, 3]
        assert calibrated_stacking_predict(sc, CLASSES, [0, 1], [2, 3], -0.5).tolist() == [0, 0, 3]
        # candidates -3, -1, 0.5, 2: only 0.5 gets all three right (S = U = H = 100)
        best = choose_threshold(sc, y, CLASSES, [0, 1], [2, 3])
        assert best == {"gamma": 0.5, "S": 100.0, "U": 100.0, "H": 100.0}   # was H 66.67 at some gamma
        assert gzsl_eval(sc, y, CLASSES, [0, 1], [2, 3], gamma=best["gamma"])["H"] == 100.0
    # the gate: equal infinite errors give r = 1 (as equal zero errors do), not NaN
    err = np.array([[np.inf, np.inf, np.inf, np.inf], [0.0, 1.0, 0.0, 3.0], [1.0, 2.0, 4.0, 2.0]])
    np.testing.assert_array_equal(gate_ratio(-err, CLASSES, [0, 1], [2, 3]), [1.0, 1.0, 0.5])
    assert gate_predict(-err, CLASSES, [0, 1], [2, 3], 0.75).tolist() == [2, 2, 0]   # r > 0.75 -> unseen
    assert gate_predict(-err, CLASSES, [0, 1], [2, 3], 1.0).tolist() == [0, 0, 0]


def test_gate_threshold_between_adjacent_ratios_is_what_prediction_applies():
    """Gate ratios 3.0 and the next double above it: the midpoint of their negations rounds onto
    -3.0, a candidate the search counted as 'unseen' for r = 3.0 while gate_predict (unseen iff
    r > gamma) sends r = 3.0 to seen; the search reported S 0 / U 100 / H 0 for a gamma at which
    the prediction gives H 100. Each candidate now lies where the prediction splits."""
    up = np.nextafter(3.0, np.inf)
    err = np.array([[3.0, 9.0, 1.0, 9.0],    # r = 3.0, label 0 (seen): right iff r <= gamma
                    [up, 9.0, 1.0, 9.0]])    # r = 3.0000000000000004, label 2: right iff r > gamma
    best = choose_threshold(-err, [0, 2], CLASSES, [0, 1], [2, 3], rule="gate")
    assert best == {"gamma": 3.0, "S": 100.0, "U": 100.0, "H": 100.0}
    assert gate_predict(-err, CLASSES, [0, 1], [2, 3], best["gamma"]).tolist() == [0, 2]
    # stacking: margins 1.0 and the next double: a threshold in [1.0, next) splits them
    sc = np.array([[1.0, 0.0, 0.0, 0.0], [np.nextafter(1.0, 2.0), 0.0, 0.0, 0.0]])
    best = choose_threshold(sc, [2, 0], CLASSES, [0, 1], [2, 3])
    assert best == {"gamma": 1.0, "S": 100.0, "U": 100.0, "H": 100.0}
    assert calibrated_stacking_predict(sc, CLASSES, [0, 1], [2, 3], best["gamma"]).tolist() == [2, 0]
    # on coarse scores (many margins equal up to rounding) the reported S/U/H are always reproduced
    rng = np.random.default_rng(0)
    for _ in range(600):
        sc = np.round(rng.normal(size=(8, 4)), 1); y = np.array([0, 2] + rng.choice(CLASSES, 6).tolist())
        for rule, s in (("stacking", sc), ("gate", -np.abs(sc))):
            got = choose_threshold(s, y, CLASSES, [0, 1], [2, 3], rule=rule)
            again = gzsl_eval(s, y, CLASSES, [0, 1], [2, 3], gamma=got["gamma"], rule=rule)
            assert {k: again[k] for k in ("S", "U", "H")} == {k: got[k] for k in ("S", "U", "H")}


def test_gamma_must_be_a_number():
    """gamma=nan sent every sample to unseen and reported gamma NaN (null in JSON) with no word;
    a gamma read as text ('0.5') failed inside numpy. +-inf stay: all unseen / all seen."""
    for bad in (float("nan"), "0.5", None, True):
        with pytest.raises(ConfigError, match="gzsl_eval \\(stacking\\): gamma must be a number"):
            gzsl_eval(SCORES, LABELS, CLASSES, [0, 1], [2, 3], gamma=bad)
    with pytest.raises(ConfigError, match="gate_predict: gamma must be a number .*nan"):
        gate_predict(-np.abs(SCORES), CLASSES, [0, 1], [2, 3], np.float32("nan"))
    with pytest.raises(ConfigError, match="calibrated_stacking: gamma"):
        calibrated_stacking_predict(SCORES, CLASSES, [0, 1], [2, 3], "1")
    assert calibrated_stacking_predict(SCORES, CLASSES, [0, 1], [2, 3], np.inf).tolist() == [2, 3, 2, 3, 2]
    assert calibrated_stacking_predict(SCORES, CLASSES, [0, 1], [2, 3], -np.inf).tolist() == [0, 1, 0, 1, 0]
    assert gzsl_eval(SCORES, LABELS, CLASSES, [0, 1], [2, 3], gamma=np.int64(1))["gamma"] == 1.0


def test_threshold_tie_rule_by_hand():
    """Margins -1 (C), 0.5 (D), 1 (A), 2 (B); A and C are right in their own branch, B and D
    wrong. Candidates -2, -0.25, 0.75, 1.5, 3 give H 0, 50, 50, 0, 0: the tie of -0.25 and 0.75
    goes to the second of the two, as documented."""
    sc = np.array([[1.0, 0.0, 0.0, 0.0],    # A label 0: margin 1
                   [0.0, 2.0, 0.0, 0.0],    # B label 0: margin 2, seen branch says 1
                   [0.0, 0.0, 1.0, 0.0],    # C label 2: margin -1
                   [0.5, 0.0, 0.0, 0.0]])   # D label 3: margin 0.5, unseen branch says 2 (first of a tie)
    y = [0, 0, 2, 3]
    assert choose_threshold(sc, y, CLASSES, [0, 1], [2, 3]) == {"gamma": 0.75, "S": 50.0, "U": 50.0, "H": 50.0}
    assert calibrated_stacking_predict(sc, CLASSES, [0, 1], [2, 3], 0.0).tolist() == [0, 1, 2, 0]
    assert calibrated_stacking_predict(sc, CLASSES, [0, 1], [2, 3], 1.0).tolist() == [2, 1, 2, 2]  # 1 > 1 is false


def test_labels_without_a_score_column_are_refused():
    """A label with no score column can never be predicted: gzsl_eval counted such a sample
    (class 7, listed as seen) as a wrong seen sample (S 50 instead of an error) and
    choose_threshold left it out of S altogether (S 100), whether or not it was listed as
    seen; zsl_accuracy already refused it. Both now say which labels."""
    sc = np.array([[1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
    for seen in ([0, 1, 7], [0, 1]):
        with pytest.raises(DataError, match=r"gzsl_eval: labels \[7\] are not among the scored classes"):
            gzsl_eval(sc, [0, 7, 2], CLASSES, seen, [2, 3])
        with pytest.raises(DataError, match=r"choose_threshold: labels \[7\] are not among the scored classes"):
            choose_threshold(sc, [0, 7, 2], CLASSES, seen, [2, 3])
    assert gzsl_eval(sc, [0, 0, 2], CLASSES, [0, 1], [2, 3]) == {"S": 100.0, "U": 100.0, "H": 100.0, "gamma": 0.0}
