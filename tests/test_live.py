from pr1.commands import live


def test_run_job_without_tui_just_runs_it(tmp_path):
    assert live.run_job(tmp_path / "run", lambda: 42, tui=False) == 42
    assert not (tmp_path / "run").exists()


def test_tui_runs_the_job_under_the_dashboard_of_its_folder(tmp_path, monkeypatch):
    import pr1.tui.watch_app as watch_app

    seen = {}

    def fake_watch(run_dir, *, job):
        seen["dir"] = run_dir
        return job()

    monkeypatch.setattr(watch_app, "run_watch", fake_watch)
    assert live.run_job(tmp_path / "run", lambda: "done", tui=True) == "done"
    assert seen["dir"] == tmp_path / "run" and (tmp_path / "run").is_dir()
