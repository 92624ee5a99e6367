"""The project model: defaults, Hopsworks environment names, config file, precedence."""

import getpass

import pytest

from hops_jupyter.core import project


def test_embedded_default(hops_home):
    cfg = project.current()
    assert cfg.name == "demo"
    assert cfg.user == getpass.getuser()
    assert cfg.project_user == f"demo__{getpass.getuser()}"
    assert cfg.root == f"file://{hops_home}"
    assert cfg.project_id.isdigit()
    assert project.current().project_id == cfg.project_id  # stable


def test_hopsworks_environment_names(monkeypatch):
    monkeypatch.setenv("HADOOP_USER_NAME", "fraud__meb10000")
    monkeypatch.setenv("HOPSWORKS_PROJECT_ID", "119")
    monkeypatch.setenv("EXECUTOR_GPUS", "2")
    monkeypatch.setenv("NUM_TF_PS", "1")
    monkeypatch.setenv("KAFKA_BROKERS", "10.0.0.1:9091,10.0.0.2:9091")
    monkeypatch.setenv("MATERIAL_DIRECTORY", "/srv/certs")
    cfg = project.current()
    assert (cfg.name, cfg.user, cfg.project_user) == ("fraud", "meb10000", "fraud__meb10000")
    assert cfg.project_id == "119"
    assert (cfg.executor_gpus, cfg.num_tf_ps) == (2, 1)
    assert cfg.kafka_brokers == "10.0.0.1:9091,10.0.0.2:9091"
    assert cfg.material_directory == "/srv/certs"


def test_hdfs_user_and_project_name_env(monkeypatch):
    monkeypatch.setenv("HDFS_USER", "old__bob")
    monkeypatch.setenv("HOPSWORKS_PROJECT_NAME", "newer")
    cfg = project.current()
    assert (cfg.name, cfg.user) == ("newer", "bob")


def test_hadoop_conf_dir_gives_default_fs(tmp_path, monkeypatch):
    (tmp_path / "core-site.xml").write_text(
        "<configuration><property><name>fs.defaultFS</name>"
        "<value>hdfs://namenode.hops:8020</value></property></configuration>"
    )
    monkeypatch.setenv("HADOOP_CONF_DIR", str(tmp_path))
    assert project.current().root == "hdfs://namenode.hops:8020"


def test_precedence_arguments_env_file_defaults(hops_home, monkeypatch):
    hops_home.mkdir(parents=True)
    (hops_home / "config.toml").write_text('project = "fromfile"\nuser = "filer"\nworkers = 3\n')
    cfg = project.current()
    assert (cfg.name, cfg.user, cfg.local_workers) == ("fromfile", "filer", 3)
    monkeypatch.setenv("HOPSWORKS_PROJECT_NAME", "fromenv")
    assert project.current().name == "fromenv"
    assert project.current().user == "filer"
    assert project.current(project="fromargs").name == "fromargs"


def test_config_file_location_from_env(tmp_path, monkeypatch):
    other = tmp_path / "elsewhere.toml"
    other.write_text('root = "file:///srv/hops"\n')
    monkeypatch.setenv("HOPS_CONFIG", str(other))
    assert project.current().root == "file:///srv/hops"


@pytest.mark.parametrize(
    "root, message",
    [
        ("s3://bucket/x", "Unknown filesystem scheme 's3'"),
        ("relative/dir", "must be an absolute path"),
        ("file://host/x", "takes no host"),
    ],
)
def test_bad_root_is_named(monkeypatch, root, message):
    monkeypatch.setenv("HOPS_ROOT", root)
    with pytest.raises(ValueError, match=message) as err:
        project.current()
    assert root in str(err.value)


def test_bad_values_are_named(hops_home, monkeypatch):
    monkeypatch.setenv("EXECUTOR_GPUS", "two")
    with pytest.raises(ValueError, match=r"executor_gpus from \$EXECUTOR_GPUS .*'two'"):
        project.current()
    monkeypatch.delenv("EXECUTOR_GPUS")
    with pytest.raises(ValueError, match="'bad name!'"):
        project.current(project="bad name!")
    hops_home.mkdir(parents=True)
    (hops_home / "config.toml").write_text('colour = "blue"\n')
    with pytest.raises(ValueError, match=r"unknown keys \['colour'\]"):
        project.current()


@pytest.mark.parametrize("bad", ["../..", "a/b", "..", "", "x y", "ü", None, 3])
def test_check_project_name_refuses_path_pieces(bad):
    with pytest.raises(ValueError, match="may hold only letters, digits and '_'") as err:
        project.check_project_name(bad, "project=")
    assert repr(bad) in str(err.value) and "project=" in str(err.value)


def test_check_project_name_accepts_hopsworks_names():
    for good in ("demo", "demo_deep_learning", "Fraud2", "_x"):
        assert project.check_project_name(good) == good


def test_configured_project_name_error_names_its_source(hops_home, monkeypatch):
    monkeypatch.setenv("HOPSWORKS_PROJECT_NAME", "../../etc")
    with pytest.raises(ValueError, match=r"'\.\./\.\./etc' \(from \$HOPSWORKS_PROJECT_NAME\)"):
        project.current()
    monkeypatch.delenv("HOPSWORKS_PROJECT_NAME")
    hops_home.mkdir(parents=True)
    (hops_home / "config.toml").write_text('project = "a/b"\n')
    with pytest.raises(ValueError, match=r"'a/b' \(from .*config.toml\)"):
        project.current()
