from workflow_utils.env_check import check_environment, check_package


def test_installed_package_is_ok():
    ok, line = check_package("torch", "2.6")
    assert ok and line == "[OK] torch >= 2.6"


def test_missing_package_names_the_fix():
    ok, line = check_package("surely-not-installed-pkg", "1.0")
    assert not ok and "run `make install`" in line


def test_too_old_is_a_failure():
    ok, line = check_package("torch", "999.0")
    assert not ok and line.startswith("[FAIL] torch >= 999.0")


def test_check_environment_prints_one_line_each(capsys):
    assert check_environment({"torch": "2.6", "numpy": "1.0"}) is True
    assert capsys.readouterr().out.splitlines() == ["[OK] torch >= 2.6", "[OK] numpy >= 1.0"]
