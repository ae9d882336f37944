"""search.json as a typed SearchRecord (hpo_prune.results.search_record): written and read
back unchanged, older records read with what their searches did, broken ones refused in one
line that names the value and the fix."""
from __future__ import annotations

import json

import pytest

from hpo_prune.errors import UsageError
from hpo_prune.results import SearchRecord, StudyRecord, read
from hpo_prune.results.files import SEARCH_FILE
from hpo_prune.results.study_names import parse, study_name

FIX = "choose another --name"


def test_a_record_reads_back_as_it_was_written(tmp_path):
    record = SearchRecord(
        name="s", model="vgg16", datasets=("digits",), regimes=("pretrained", "scratch"),
        storage="sqlite:///x.db", seed=2, sampler="tpe", trials=3, epochs=4, baseline_seeds=1,
        confirm=0, levels=(0.8, 0.95), replicates=5, keep_models="all", early_stop="none",
        preset="quick", space="vgg.yaml", settings={"precision": "fp32", "seed": 2},
        studies=(StudyRecord("s.r1.vgg16.digits.scratch", "vgg16", "digits", "scratch", "",
                             1, 1_100_000),))
    record.write(tmp_path)
    raw = json.loads((tmp_path / SEARCH_FILE).read_text())
    assert raw["levels"] == [0.8, 0.95] and raw["studies"][0]["replicate"] == 1
    assert "pooled" not in raw  # the analysis's own field is never written by a search
    back = read(tmp_path, FIX)
    assert back == record and back.precision == "fp32"


def test_an_older_record_reads_with_what_its_search_did(tmp_path):
    (tmp_path / SEARCH_FILE).write_text(json.dumps({"name": "s", "model": "mobilenet_v2"}))
    old = read(tmp_path, FIX)
    assert (old.baseline_seeds, old.levels, old.replicates, old.keep_models, old.precision,
            old.studies) == (1, (), 0, "front", "bf16", ())
    assert read(tmp_path / "nowhere", FIX) is None


@pytest.mark.parametrize("text, expected", [
    ("{ not json", "is not valid JSON"),
    ("[1, 2]", "is not a search record"),
    ('{"studies": 3}', "is not a search record"),
    ('{"baseline_seeds": 0}', "baseline_seeds 0 is not a count >= 1"),
    ('{"replicates": -1}', "replicates -1 is not a count"),
    ('{"replicates": true}', "replicates True is not a count"),
    ('{"keep_models": "most"}', "keep_models 'most' is not one of front, all, none"),
    ('{"settings": {"precision": "fp8"}}', "precision 'fp8' is not one of bf16, fp32"),
    ('{"levels": ["high"]}', "levels, datasets, regimes must be lists"),
    ('{"studies": [{"model": "vgg16"}]}', "has no name"),
])
def test_a_broken_record_is_one_line_naming_the_value_and_the_fix(tmp_path, text, expected):
    (tmp_path / SEARCH_FILE).write_text(text)
    with pytest.raises(UsageError) as err:
        read(tmp_path, FIX)
    message = str(err.value)
    assert expected in message and message.endswith(FIX) and "\n" not in message


def test_study_names_are_built_and_read_in_one_place():
    name = study_name("vgg16_quick", "vgg16", "digits", "scratch", replicate=3)
    assert name == "vgg16_quick.r3.vgg16.digits.scratch"
    assert parse(name) == ("vgg16_quick.r3", "vgg16", "digits", "scratch")
    assert parse(study_name("s", "timm:resnet10t", "my-pets", "pretrained")).model == \
        "timm:resnet10t"
    assert parse("not-a-study") is None
