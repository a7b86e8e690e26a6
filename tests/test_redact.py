from ioprof.redact import REDACTED, redact_argv, redact_env, redact_text


def test_option_values_that_look_like_credentials_are_hidden():
    argv = ["python", "train.py", "--password=hunter2", "--api-key", "abc123", "--epochs", "3",
            "AWS_SECRET_ACCESS_KEY=xyz"]
    out = redact_argv(argv)
    joined = " ".join(out)
    for secret in ("hunter2", "abc123", "xyz"):
        assert secret not in joined
    assert out[:2] == ["python", "train.py"]
    assert "--epochs" in out and "3" in out
    assert f"--password={REDACTED}" in out
    assert out[out.index("--api-key") + 1] == REDACTED


def test_userinfo_in_urls_is_removed_anywhere():
    assert redact_text("gs://bucket/x") == "gs://bucket/x"
    out = redact_text("--data=https://user:pw@host.example/path")
    assert "user:pw" not in out and "host.example/path" in out


def test_env_values_redacted_by_name():
    env = redact_env({"AWS_SECRET_ACCESS_KEY": "s", "HOME": "/root", "GITHUB_TOKEN": "t",
                      "PROXY": "http://u:p@proxy:3128"})
    assert env["AWS_SECRET_ACCESS_KEY"] == REDACTED
    assert env["GITHUB_TOKEN"] == REDACTED
    assert env["HOME"] == "/root"
    assert "u:p" not in env["PROXY"]
