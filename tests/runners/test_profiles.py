"""Runner profiles: validation with line numbers, and the Beam options each engine gets."""

from __future__ import annotations

import re

import pytest
from apache_beam.options.pipeline_options import PipelineOptions, PortableOptions
from typer.testing import CliRunner

from recipes_core.cli import app
from recipes_core.errors import RecipeValidationError, RunnerError
from recipes_core.plan import compile_recipe
from recipes_core.recipe_io import load_recipe
from recipes_core.runners import bundled_profiles, load_profile
from recipes_core.runners.engines import dask_npartitions, dataflow_args, flink_args
from recipes_core.runners.profile import DaskSettings, RunnerProfile
from tests.conftest import EXAMPLES


def test_every_bundled_profile_loads():
    names = set(bundled_profiles())
    assert {"direct", "direct-multiprocess", "dask", "flink", "dataflow"} <= names
    for name in names:
        assert load_profile(name).name == name


def test_unknown_key_is_refused_with_its_line(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("name: mine\nengine: dask\ndask:\n  n_workers: 2\n  n_wrokers: 3\n")
    with pytest.raises(RecipeValidationError) as info:
        load_profile(path)
    text = str(info.value)
    assert "line 5, field dask.n_wrokers: unknown field 'n_wrokers'" in text
    assert "Did you mean 'n_workers'?" in text


def test_wrong_type_is_refused_with_its_line(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("name: mine\nengine: direct\ndirect:\n  num_workers: many\n")
    with pytest.raises(RecipeValidationError, match=r"line 4, field direct\.num_workers"):
        load_profile(path)


@pytest.mark.parametrize("text, message", [
    ("name: x\nengine: direct\ndask: {n_workers: 2}\n", "does not apply to engine 'direct'"),
    ("name: x\nengine: dask\ntarget_root: s3://user:secret@bucket/x\n", "credentials"),
    ("name: x\nengine: dask\ndask: {scheduler: 'tcp://u:p@host:8786'}\n", "credentials"),
    ("name: x\nengine: flink\nflink: {environment_type: LOOPBACK}\n", "job_endpoint"),
    ("name: x\nengine: dataflow\n", "needs a dataflow section"),
])
def test_bad_profiles(tmp_path, text, message):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(RecipeValidationError) as info:
        load_profile(path)
    assert message in str(info.value)
    assert "secret" not in str(info.value)


def test_unknown_profile_name():
    with pytest.raises(RunnerError, match=r"no runner profile named 'spark'.*arco runners"):
        load_profile("spark")


def test_flink_profile_builds_flink_options():
    profile = load_profile("flink")
    args = flink_args(profile.flink)
    options = PipelineOptions(args).get_all_options()
    assert options["runner"] == "FlinkRunner"
    assert options["flink_master"] == "localhost:8081"
    assert options["flink_version"] == "1.19"
    assert options["parallelism"] == 2
    assert options["environment_type"] == "EXTERNAL"
    assert options["environment_config"] == "localhost:50000"
    assert options["sdk_container_image"] == "apache/beam_python3.11_sdk:2.77.0"
    jar = RunnerProfile.model_validate({
        "name": "f", "engine": "flink",
        "flink": {"flink_job_server_jar": "/opt/jars/beam-runners-flink-1.19-job-server.jar"}})
    assert "--flink_job_server_jar=/opt/jars/beam-runners-flink-1.19-job-server.jar" in \
        flink_args(jar.flink)
    embedded = RunnerProfile.model_validate({
        "name": "f", "engine": "flink",
        "flink": {"job_endpoint": "embed", "environment_type": "LOOPBACK"}})
    portable = PipelineOptions(flink_args(embedded.flink)).view_as(PortableOptions)
    assert portable.job_endpoint == "embed" and portable.environment_type == "LOOPBACK"
    assert embedded.runs_here and not profile.runs_here


def test_dataflow_profile_builds_dataflow_options():
    plan = compile_recipe(load_recipe(EXAMPLES / "ersst-v5-monthly.yaml")[0])
    options = PipelineOptions(dataflow_args(load_profile("dataflow").dataflow, plan))
    values = options.get_all_options()
    assert values["runner"] == "DataflowRunner"
    assert values["project"] == "my-project" and values["region"] == "europe-west1"
    assert values["temp_location"] == "gs://my-bucket/tmp"
    assert values["machine_type"] == "n2-standard-4" and values["max_num_workers"] == 20
    assert values["service_account_email"].startswith("arco-baker@")
    assert re.fullmatch(r"arco-ersst-v5-monthly-[0-9a-f]{8}", values["job_name"])


def test_dask_partitions_follow_the_plan():
    plan = compile_recipe(load_recipe(EXAMPLES / "ersst-v5-monthly.yaml")[0])
    assert dask_npartitions(DaskSettings(n_workers=2), plan) == 8
    assert dask_npartitions(DaskSettings(n_workers=2), plan.prune(3)) == 3
    assert dask_npartitions(DaskSettings(npartitions=5), plan) == 5


def test_runners_command_lists_profiles():
    result = CliRunner().invoke(app, ["runners"])
    assert result.exit_code == 0
    for name in ("direct", "dask", "flink", "dataflow"):
        assert name in result.output


def test_set_overrides_a_bundled_profile():
    profile = load_profile("flink", ["flink.job_endpoint=embed",
                                     "flink.environment_type=LOOPBACK"])
    assert profile.flink.job_endpoint == "embed" and profile.runs_here
    assert "--environment_config" not in " ".join(flink_args(profile.flink))
    direct = load_profile("direct", ["direct.running_mode=multi_processing",
                                     "direct.num_workers=2"])
    assert direct.direct.num_workers == 2


@pytest.mark.parametrize("override, message", [
    ("dask.n_workers", "section.key=value"),
    ("dask..x=1", "section.key=value"),
    ("dask.n_workers=[1, 2]", "only single values"),
])
def test_bad_overrides(override, message):
    with pytest.raises(RunnerError, match=re.escape(message)):
        load_profile("dask", [override])


def test_override_with_a_wrong_value_names_the_field():
    with pytest.raises(RecipeValidationError, match=r"field dask\.n_workers"):
        load_profile("dask", ["dask.n_workers=zero"])


def test_profile_errors_name_the_file_once(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("name: mine\nengine: direct\ndirect:\n  num_workers: many\n")
    with pytest.raises(RecipeValidationError) as info:
        load_profile(path)
    header = str(info.value).splitlines()[0]  # each problem line then names file and line
    assert header == f"{path}: not a valid runner profile (1 problem)"
    path.write_text("- a list\n")
    with pytest.raises(RunnerError) as info:
        load_profile(path)
    assert str(info.value).count(str(path)) == 1, str(info.value)


def test_local_workers_count_the_tasks_sharing_this_machines_cores():
    def profile(engine: str, **section: object) -> RunnerProfile:
        body = {"name": "p", "engine": engine}
        if section:
            body[engine] = section
        return RunnerProfile.model_validate(body)

    assert profile("direct").local_workers == 1
    assert profile("direct", running_mode="multi_threading", num_workers=4).local_workers == 4
    assert profile("direct", running_mode="multi_processing", num_workers=3).local_workers == 3
    assert profile("dask", n_workers=2).local_workers == 2
    assert profile("dask", n_workers=2, threads_per_worker=3).local_workers == 6
    assert profile("dask", scheduler="tcp://10.0.0.5:8786").local_workers is None
    assert profile("flink").local_workers is None


def test_the_heap_is_frozen_during_an_engine_session_and_handed_back_after():
    """Objects alive before a bake are out of the cyclic collector's sight while it runs (a
    full collection walked all of them), and back in it afterwards, even on an error."""
    import gc

    from recipes_core.runners.engines import engine_session, frozen_heap

    plan = compile_recipe(load_recipe(EXAMPLES / "ersst-v5-monthly.yaml")[0], EXAMPLES)
    before = [object()]  # alive before the session: frozen with everything else
    assert gc.get_freeze_count() == 0
    with engine_session(load_profile("direct"), plan):
        assert gc.get_freeze_count() > 0
        frozen = gc.get_freeze_count()
        with frozen_heap():  # inside another: nothing changes, and nothing is unfrozen
            assert gc.get_freeze_count() == frozen
        assert gc.get_freeze_count() == frozen
        assert not any(obj is before for obj in gc.get_objects())  # not in any generation
    assert gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError), engine_session(load_profile("direct"), plan):
        raise RuntimeError("a failed bake")
    assert gc.get_freeze_count() == 0
    assert any(obj is before for obj in gc.get_objects())


def test_only_a_lone_in_process_worker_skips_beams_reshuffles():
    """Reshuffles spread sources and tasks over workers; the direct runner in memory has one,
    which runs them all in turn, so its graph goes without them (the contract suite checks
    the stores are byte-identical either way)."""
    assert load_profile("direct").spreads_work is False
    assert load_profile("direct-multiprocess").spreads_work is True
    threads = load_profile("direct", ["direct.running_mode=multi_threading",
                                      "direct.num_workers=2"])
    assert threads.spreads_work is True
    assert load_profile("dask").spreads_work is True
    assert load_profile("flink").spreads_work is True
