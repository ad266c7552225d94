"""A training fold says which split it is: the provenance that reaches the callbacks."""

from __future__ import annotations

import pickle

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, cross_validate

from skbpr import HybridBPR
from skbpr.callbacks import Callback, MLflowCallback
from skbpr.data.equality import same_contents
from skbpr.data.folds import was_split
from skbpr.datasets import make_interactions
from skbpr.model_selection import PerUserKFold, train_test_split
from skbpr.tracking.candidates import params_digest


class Recorder(Callback):
    """Keeps the search context every fit began with (in this process)."""

    seen: list = []

    def on_fit_begin(self, estimator, logs):
        Recorder.seen.append((logs["search"], estimator.learning_rate))


def _data():
    return make_interactions(60, 40, 400, random_state=0)


def test_split_records_folds_and_selection_knows_its_split():
    data = _data()
    assert data.fold is None and not was_split(data)
    splits = list(PerUserKFold(3, random_state=0).split(data))
    for split, (train, test) in enumerate(splits):
        assert data[train].fold == (split, 3)
        assert data[test].fold is None
        assert data[train][np.arange(5)].fold is None  # a part of a fold is not the fold
    again = pickle.loads(pickle.dumps(data))  # worker processes get the record with the data
    assert again[splits[1][0]].fold == (1, 3)
    train, _ = train_test_split(data, random_state=0)
    assert train.fold is None and not was_split(train)


def test_search_context_reaches_the_callbacks():
    data = _data()
    Recorder.seen = []
    est = HybridBPR(4, epochs=1, n_threads=1, random_state=0, callbacks=[Recorder()])
    GridSearchCV(est, {"learning_rate": [0.05, 0.1]}, cv=PerUserKFold(2, random_state=0), n_jobs=1).fit(data)
    folds = [(s["fold"], lr) for s, lr in Recorder.seen if s["fold"] is not None]
    assert folds == [((0, 2), 0.05), ((1, 2), 0.05), ((0, 2), 0.1), ((1, 2), 0.1)]
    assert [s["whole"] for s, _ in Recorder.seen] == [False] * 4 + [True]


def test_other_splitters_leave_no_context():
    data = _data()
    Recorder.seen = []
    est = HybridBPR(4, epochs=1, n_threads=1, random_state=0, callbacks=[Recorder()])
    cross_validate(est, data, cv=KFold(2), scoring=lambda e, X, y=None: 0.0)
    assert [s for s, _ in Recorder.seen] == [{"fold": None, "whole": False}] * 2


def test_mlflow_callback_tags_from_clone_lineage_and_fold():
    callback = MLflowCallback()
    base = clone(HybridBPR(callbacks=[callback])).callbacks[0]  # a search's base
    fits = [clone(HybridBPR(callbacks=[base])).callbacks[0] for _ in range(5)]
    search = fits[0]._origin  # the base's id: every fit of the search carries it, and no other callback
    assert search == base._clone_id == fits[4]._origin and len(search) == 16
    assert fits[3]._search_tags({"fold": (1, 2), "whole": False}) == {
        "skbpr.cv_split": "1",
        "skbpr.cv_n_splits": "2",
        "skbpr.cv_candidate": "1",
        "skbpr.cv_search": search,
    }
    assert fits[4]._search_tags({"fold": None, "whole": True}) == {"skbpr.cv_refit": "true", "skbpr.cv_search": search}
    # with the estimator, the digest of its parameters too
    est = HybridBPR(learning_rate=0.05, callbacks=[fits[3]])
    tags = fits[3]._search_tags({"fold": (1, 2), "whole": False}, est)
    assert tags["skbpr.cv_params_digest"] == params_digest(est.get_params(deep=False))
    direct = clone(HybridBPR(callbacks=[callback])).callbacks[0]  # cross_validate clones the user's estimator
    assert direct._search_tags({"fold": (0, 3), "whole": False}) == {"skbpr.cv_split": "0", "skbpr.cv_n_splits": "3"}
    assert callback._search_tags({"fold": None, "whole": True}) == {}


def test_split_leaves_its_input_unchanged_and_a_later_plain_fit_is_a_plain_fit(tmp_path):
    """scikit-learn's contract: split does not change X; the fit of the split container by the user is no refit."""
    from mlflow import MlflowClient
    from sklearn.model_selection import GridSearchCV

    data = _data()

    def attributes():
        return {k: dict(v) if isinstance(v, dict) else v for k, v in vars(data).items()}

    before = attributes()
    twin = _data()
    splits = list(PerUserKFold(3, random_state=0).split(data))
    after = attributes()
    assert after.keys() == before.keys()
    assert all(after[k] == v if isinstance(v, dict) else after[k] is v for k, v in before.items())
    assert same_contents(data, twin)
    assert data[splits[1][0]].fold == (1, 3)  # the selection still knows its split

    uri = f"sqlite:///{tmp_path / 'plain.db'}"
    Recorder.seen = []
    tracker = MLflowCallback(tracking_uri=uri, experiment_name="plain", log_model=False)
    est = HybridBPR(4, epochs=1, n_threads=1, random_state=0, callbacks=[Recorder(), tracker])
    fitted = est.fit(data)
    assert Recorder.seen == [({"fold": None, "whole": False}, est.learning_rate)]
    tags = MlflowClient(uri).get_run(fitted.callbacks_[1].run_id_).data.tags
    assert not [k for k in tags if k.startswith("skbpr.cv_")], tags
    # a search over the same container still records its folds and its refit
    Recorder.seen = []
    GridSearchCV(est, {"learning_rate": [0.05]}, cv=PerUserKFold(2, random_state=0), n_jobs=1).fit(data)
    assert [s for s, _ in Recorder.seen] == [{"fold": (0, 2), "whole": False}, {"fold": (1, 2), "whole": False}] + [
        {"fold": None, "whole": True}
    ]
    runs = MlflowClient(uri).search_runs([MlflowClient(uri).get_experiment_by_name("plain").experiment_id])
    labels = sorted(r.data.tags.get("skbpr.cv_refit", "-") + r.data.tags.get("skbpr.cv_split", "-") for r in runs)
    assert labels == ["--", "-0", "-1", "true-"]  # the first plain fit, the two fold fits, the refit
    # and a plain fit after the search is still a plain fit
    Recorder.seen = []
    est.fit(data)
    assert Recorder.seen == [({"fold": None, "whole": False}, est.learning_rate)]
