"""The magics in a real IPython shell: every %hdfs subcommand, every %%experiment option, and
%tensorboard, with their bad-input messages."""

import threading

import pytest
from IPython.core.interactiveshell import InteractiveShell

from hops import hdfs


@pytest.fixture
def ip(hops_home):
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "hops_jupyter")
    yield shell
    shell.run_line_magic("unload_ext", "hops_jupyter")
    for name in ("_exp", "res", "offset", "lock"):
        shell.user_ns.pop(name, None)


def run(ip, code):
    result = ip.run_cell(code, store_history=True)
    assert result.error_in_exec is None, result.error_in_exec
    return result.result


def test_load_and_unload(ip):
    assert (
        ip.find_line_magic("hdfs")
        and ip.find_cell_magic("experiment")
        and ip.find_line_magic("tensorboard")
    )
    ip.run_line_magic("unload_ext", "hops_jupyter")
    assert ip.find_line_magic("hdfs") is None and ip.find_cell_magic("experiment") is None
    ip.run_line_magic("load_ext", "hops_jupyter")
    doc = ip.find_line_magic("hdfs").__doc__
    assert "%hdfs" in doc and "--recursive" in doc and "ls, cat, head" in doc
    assert "--grid" in ip.find_cell_magic("experiment").__doc__


def test_hdfs_subcommands(ip, tmp_path, capsys):
    listing = run(ip, "%hdfs ls")
    text = repr(listing)
    assert "/Projects/demo" in text and "Resources/" in text and "directory" in text
    assert "<table>" in listing._repr_html_()
    run(ip, '%hdfs mkdir "Resources/my data"')
    local = tmp_path / "notes file.txt"
    local.write_text("one\ntwo\nthree\n")
    run(ip, f'%hdfs put "{local}" "Resources/my data"')
    assert hdfs.load("Resources/my data/notes file.txt") == b"one\ntwo\nthree\n"
    capsys.readouterr()
    run(ip, '%hdfs cat "Resources/my data/notes file.txt"')
    assert capsys.readouterr().out == "one\ntwo\nthree\n"
    run(ip, '%hdfs head -n 2 "Resources/my data/notes file.txt"')
    assert capsys.readouterr().out == "one\ntwo\n"
    listing = run(ip, '%hdfs ls "Resources/my data"')
    assert "notes file.txt" in repr(listing) and "14 B" in repr(listing)
    run(ip, '%hdfs cp "Resources/my data/notes file.txt" Resources/copy.txt')
    run(ip, "%hdfs mv Resources/copy.txt Models/moved.txt")
    assert hdfs.exists("Models/moved.txt") and not hdfs.exists("Resources/copy.txt")
    out = tmp_path / "down"
    run(ip, f'%hdfs get Models/moved.txt "{out}"')
    assert (out / "moved.txt").read_text() == "one\ntwo\nthree\n"
    du = run(ip, "%hdfs du Resources")
    assert "14 B in all" in du.title
    run(ip, "%hdfs rm Models/moved.txt")
    assert not hdfs.exists("Models/moved.txt")
    run(ip, '%hdfs rm -r "Resources/my data"')
    assert not hdfs.exists("Resources/my data")
    capsys.readouterr()
    run(ip, "%hdfs info")
    assert "project:      demo" in capsys.readouterr().out


@pytest.mark.parametrize(
    "line, message",
    [
        ("%hdfs frobnicate", "hdfs: unknown subcommand 'frobnicate'; use one of ls, cat"),
        ("%hdfs cat Resources/nope.txt", "hdfs cat: No such file: "),
        ("%hdfs cat ../escape.txt", "hdfs cat: Path '../escape.txt' escapes the project"),
        ("%hdfs mv", "hdfs mv: usage: %hdfs mv SRC DST"),
        ("%hdfs rm Resources", "hdfs rm: Directory "),
        ("%hdfs put /no/such/file", "hdfs put: No such local file or directory"),
    ],
)
def test_hdfs_errors_are_one_line(ip, capsys, line, message):
    hdfs.project_path()
    hdfs.dump("x", "Resources/keep.txt")
    result = ip.run_cell(line)
    err = capsys.readouterr().err
    assert result.error_in_exec is None  # no traceback
    assert err.startswith(message) and err.count("\n") == 1, err
    assert hdfs.exists("Resources/keep.txt")  # nothing half done


def test_experiment_grid_with_notebook_variables(ip):
    run(ip, "offset = 10")
    run(
        ip,
        "%%experiment --grid lr=0.1,0.2 layers=1,2 --direction min --name tiny --workers 2\nlr * layers + offset",
    )
    result = ip.user_ns["_exp"]
    assert result.record.name == "tiny" and result.record.kind == "grid_search"
    assert len(result.trials) == 4 and result.best_params == {"lr": 0.1, "layers": 1}
    assert result.best_metric == pytest.approx(10.1)


def test_experiment_de_random_metric_timeout_output(ip):
    run(ip, "%%experiment --de lr=0.0:1.0 units=1:8 opt=adam,sgd --generations 2 --population 4 --seed 1 -o res\n"
            "score = -abs(lr - 0.5) + (opt == 'adam')\nscore")  # fmt: skip
    de = ip.user_ns["res"]
    assert de.record.kind == "differential_evolution" and len(de.trials) <= 8
    assert isinstance(de.best_params["units"], int) and de.best_params["opt"] in ("adam", "sgd")
    run(
        ip,
        "%%experiment --random lr=0.0:1.0 --samples 3 --seed 2 --metric acc --timeout 30\nacc = lr * 2",
    )
    rnd = ip.user_ns["_exp"]
    assert rnd.record.kind == "random_search" and len(rnd.trials) == 3
    assert rnd.best_metric == pytest.approx(2 * rnd.best_params["lr"])
    run(ip, "%%experiment --timeout 1 --grid x=1,2\nimport time\ntime.sleep(5 if x == 2 else 0)\nx")
    timed = {t.params["x"]: t for t in ip.user_ns["_exp"].trials}
    assert timed[1].status == "FINISHED" and timed[2].error["type"] == "TrialTimeout"


def test_experiment_reuse_workers(ip):
    cell = "import os, sys\nseen = getattr(sys, '_left', None)\nsys._left = x\n{'metric': x, 'seen': seen}"
    run(ip, "%%experiment --grid x=1,2,3 --workers 1 --reuse-workers\n" + cell)
    assert [t.returned["seen"] for t in ip.user_ns["_exp"].trials] == [None, 1, 2]
    run(ip, "%%experiment --grid x=1,2,3 --workers 1\n" + cell)
    assert [t.returned["seen"] for t in ip.user_ns["_exp"].trials] == [None, None, None]


def test_experiment_single_run_and_failures(ip, capsys):
    run(ip, "%%experiment\nresult = {'accuracy': 0.75}\nresult")
    assert ip.user_ns["_exp"].return_dict == {"accuracy": 0.75}
    run(ip, "%%experiment --grid x=1,2\nraise ValueError('broken cell')")
    assert "broken cell" in capsys.readouterr().err
    assert ip.user_ns["_exp"].status == "FAILED"


def test_experiment_on_spark(ip, spark):
    run(ip, "%%experiment --engine spark --grid x=1,2,3\nx * 2")
    result = ip.user_ns["_exp"]
    assert result.record.engine == "spark" and result.best_metric == 6


@pytest.mark.parametrize(
    "cell, message",
    [
        ("%%experiment --de lr=1:0\nlr", "--de: bad range 'lr=1:0': LOW must be below HIGH"),
        # a forgotten range: one value is nothing to search (it ran 1 trial of 20 before)
        ("%%experiment --de lr=0.1\nlr", "--de: nothing to search in 'lr=0.1'"),
        ("%%experiment --random a=1 b=x\na", "--random: nothing to search in 'a=1 b=x'"),
        (
            "%%experiment --random lr=a:1\nlr",
            "--random: bad range 'lr=a:1': LOW and HIGH must be numbers",
        ),
        ("%%experiment --engine ray\n1", "argument --engine: invalid choice: 'ray'"),
        ("%%experiment --direction up\n1", "argument --direction: invalid choice: 'up'"),
        ("%%experiment --grid lr\n1", "--grid: bad hyperparameter 'lr': write NAME=VALUES"),
        ("%%experiment --grid a=1 --de b=0:1\n1", "use one of --grid, --de, --random"),
        (
            "%%experiment --grid x=1\nwith lock:\n    x",
            "cannot send these notebook variables to the trials: lock (lock:",
        ),
        ("%%experiment --grid x=1\nx +", "the cell is not valid Python"),
    ],
)
def test_experiment_bad_input(ip, capsys, cell, message):
    ip.user_ns["lock"] = threading.Lock()
    result = ip.run_cell(cell)
    assert result.error_in_exec is not None or result.error_before_exec is not None
    error = result.error_in_exec or result.error_before_exec
    assert message in str(error), str(error)


def test_tensorboard_in_a_terminal_prints_the_url(ip, capsys, hops_home):
    run(ip, "%%experiment\n1.0")
    exp_id = ip.user_ns["_exp"].id
    from hops_jupyter.core import tensorboard

    try:
        run(ip, "%tensorboard")
        url = capsys.readouterr().out.strip().splitlines()[-1]
        assert url == tensorboard.find(exp_id).url
        run(ip, f"%tensorboard --logdir Experiments/{exp_id}")
        assert capsys.readouterr().out.strip() == url
        run(ip, "%tensorboard 20990101T000000000-abcd")
        assert "Unknown experiment id '20990101T000000000-abcd'" in capsys.readouterr().err
        run(ip, "%tensorboard --logdir Resources")
        assert "not an experiment folder" in capsys.readouterr().err
    finally:
        tensorboard.stop(exp_id)


def test_tensorboard_says_which_it_stopped_to_stay_within_the_limit(ip, capsys, monkeypatch):
    from hops_jupyter.core import tensorboard

    monkeypatch.setenv("HOPS_TENSORBOARD_MAX", "1")
    run(ip, "%%experiment -o first\n1.0")
    run(ip, "%%experiment -o second\n2.0")
    first, second = ip.user_ns["first"].id, ip.user_ns["second"].id
    try:
        run(ip, f"%tensorboard {first}")
        capsys.readouterr()
        run(ip, f"%tensorboard {second}")
        err = capsys.readouterr().err
        assert f"stopped the TensorBoard of {first}" in err and "at most 1 run at once" in err
        assert tensorboard.find(first) is None and tensorboard.find(second) is not None
    finally:
        for exp_id in (first, second):
            tensorboard.stop(exp_id)
        ip.user_ns.pop("first", None)
        ip.user_ns.pop("second", None)


def test_experiment_optimize_with_log_ranges_and_early_stopping(ip):
    run(ip, "%%experiment --optimize lr=1e-4:1e-1:log units=8:64:log act=relu,tanh --trials 12 "
            "--seed 3 --early-stop asha --workers 2\n"
            "from hops import experiment\nimport math\n"
            "score = -abs(math.log10(lr) + 2) - abs(units - 32) / 32\n"
            "for step in range(6):\n    experiment.report(score * (1 - 0.5 ** (step + 1)), step=step)\n"
            "score")  # fmt: skip
    result = ip.user_ns["_exp"]
    assert result.record.kind == "optimize" and len(result.trials) == 12
    space = result.record.search_space
    assert space["lr"] == {"type": "float", "low": 1e-4, "high": 1e-1, "log": True}
    assert space["units"] == {"type": "int", "low": 8, "high": 64, "log": True}
    assert space["act"] == ["relu", "tanh"]
    assert result.record.options["early_stopping"]["name"] == "asha"
    assert {t.status for t in result.trials} <= {"FINISHED", "EARLY_STOPPED"}
    assert any(t.status == "EARLY_STOPPED" for t in result.trials)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("--optimize lr=0:1:log", "a log range needs LOW > 0"),
        ("--optimize lr=0.1:1 --optimizer bayes", "invalid choice: 'bayes'"),
        ("--early-stop asha", "--early-stop needs a search"),
        ("--grid x=1 --optimize y=0:1", "use one of --grid, --de, --random, --optimize"),
    ],
)
def test_optimize_bad_input(ip, line, message):
    result = ip.run_cell(f"%%experiment {line}\n1")
    error = result.error_in_exec or result.error_before_exec
    assert error is not None and message in str(error), str(error)


def test_experiment_as_a_line_magic_explains_itself(ip):
    """`%experiment?` finds the help; `%experiment ...` on one line says to use two %."""
    assert "--grid" in ip.find_line_magic("experiment").__doc__
    result = ip.run_cell("%experiment --grid x=1")
    error = result.error_in_exec or result.error_before_exec
    assert error is not None and "write %%experiment (two %)" in str(error)


def test_cell_tracebacks_name_the_notebook_line_numbers(ip):
    cell = "%%experiment --grid x=1,2\ny = 1\nif x == 2:\n    raise ValueError('line 4')\nx"
    ip.run_cell(cell)
    failed = next(t for t in ip.user_ns["_exp"].trials if t.status == "FAILED")
    # The cell's 4th line (the magic is line 1) raised: the traceback says line 4.
    assert 'File "<%%experiment cell>", line 4' in failed.error["traceback"]
    assert "hops_jupyter" not in failed.error["traceback"]  # it starts at the user's code


def test_stopping_a_cell_prints_one_line(ip, capsys):
    import _thread

    # What the notebook's stop button does: a KeyboardInterrupt in the kernel's main thread.
    threading.Timer(2.0, _thread.interrupt_main).start()
    result = ip.run_cell("%%experiment --grid x=1,2,3 --workers 2\nimport time\ntime.sleep(60)\nx")
    assert result.error_in_exec is None  # no traceback
    err = capsys.readouterr().err
    assert "stopped: 0 finished, 2 killed, 1 not started" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
