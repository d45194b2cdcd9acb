"""The pytest plugin, as a fresh project that only installed the package sees it (pytester)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest_plugins = ["pytester"]

HEADER = """
import asyncio
import httpx
import pytest

AUTH = {"Authorization": "Bearer sk-test"}
BODY = {"model": "kling-v2-6", "multi_prompt": [{"prompt": "a fox", "duration": 5}]}
URL = "https://api.modelstream.ai/v1/video/generations"
"""


def _project(pytester: pytest.Pytester, tests: str, **files: str) -> None:
    pytester.makepyfile(test_project=HEADER + textwrap.dedent(tests))
    for name, text in files.items():
        if name == "ini":
            pytester.makeini(textwrap.dedent(text))
        else:
            pytester.makepyfile(**{name: textwrap.dedent(text)})


def test_a_fresh_project_uses_kling_mock_with_its_own_sync_and_async_clients(pytester: pytest.Pytester) -> None:
    _project(
        pytester,
        """
        def test_sync_client_it_builds_itself(kling_mock):
            with httpx.Client() as client:
                task = client.post(URL, json=BODY, headers=AUTH).json()
                assert task["status"] == "queued"
                assert client.get(f"{URL}/{task['task_id']}", headers=AUTH).json()["status"] == "in_progress"
            assert kling_mock.video_generations.get.call_count == 1

        def test_async_client(kling_mock):
            async def run():
                async with httpx.AsyncClient() as client:
                    return (await client.post(URL, json=BODY, headers=AUTH)).status_code
            assert asyncio.run(run()) == 200

        def test_injected_transport(kling_mock):
            with httpx.Client(transport=kling_mock.transport(), base_url=kling_mock.base_url) as client:
                assert client.get("/openapi.json").status_code == 200

        @pytest.mark.anyio
        async def test_inside_an_async_test(kling_mock):
            async with httpx.AsyncClient() as client:
                assert (await client.get(f"{URL}/task_x", headers=AUTH)).status_code == 400
        """,
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=4)


def test_each_test_gets_a_fresh_fake(pytester: pytest.Pytester) -> None:
    _project(
        pytester,
        """
        @pytest.mark.parametrize("run", [1, 2])
        def test_fresh(kling_mock, run):
            assert kling_mock.tasks() == []
            httpx.post(URL, json=BODY, headers=AUTH)
            assert len(kling_mock.tasks()) == 1
        """,
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_the_marker_configures_the_test_and_the_closest_marker_wins(pytester: pytest.Pytester) -> None:
    _project(
        pytester,
        """
        pytestmark = pytest.mark.kling(progression="immediate", keys=["sk-test", "sk-two"])

        @pytest.mark.kling(outcome="failed:content_policy", strict=True)
        def test_marked(kling_mock):
            assert httpx.post(URL, json=BODY, headers=AUTH).json()["status"] == "failed"
            assert httpx.post(URL, json={**BODY, "x": 1}, headers=AUTH).status_code == 400
            assert httpx.post(URL, json=BODY, headers={"Authorization": "Bearer sk-two"}).status_code == 200

        @pytest.mark.kling(progression="manual")
        def test_override(kling_mock):
            assert httpx.post(URL, json=BODY, headers=AUTH).json()["status"] == "queued"

        @pytest.mark.kling(base_urls=["https://gw.example/kling"], seed=7)
        def test_base_urls(kling_mock, kling_options):
            assert kling_options["seed"] == 7
            assert httpx.post("https://gw.example/kling/v1/video/generations", json=BODY, headers=AUTH).status_code == 200
        """,
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=3)


def test_an_unknown_marker_option_is_an_error_naming_the_known_ones(pytester: pytest.Pytester) -> None:
    _project(
        pytester,
        """
        @pytest.mark.kling(progresion="immediate")
        def test_typo(kling_mock):
            pass
        """,
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*got unknown option(s) ?'progresion'?; known: *'progression'*"])


@pytest.mark.parametrize(
    ("args", "ini"),
    [
        pytest.param(["--kling-progression=immediate", "--kling-base-urls=https://gw.example"], "", id="options"),
        pytest.param([], "[pytest]\nkling_progression = immediate\nkling_base_urls = https://gw.example\n", id="ini"),
    ],
)
def test_options_and_ini_keys_set_the_defaults(pytester: pytest.Pytester, args: list[str], ini: str) -> None:
    _project(
        pytester,
        """
        def test_defaults(kling_mock):
            assert kling_mock.base_urls == ("https://gw.example",)
            created = httpx.post("https://gw.example/v1/video/generations", json=BODY, headers=AUTH)
            assert created.json()["status"] == "completed"
        """,
        **({"ini": ini} if ini else {}),
    )
    pytester.runpytest("-p", "no:cacheprovider", *args).assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("args", "ini", "message"),
    [
        pytest.param(
            ["--kling-seed=abc"], "", "--kling-seed / kling_seed: must be an integer or 'random', got 'abc'", id="seed"
        ),
        pytest.param(
            ["--kling-progression=polls:x"],
            "",
            "--kling-progression / kling_progression: bad progression 'polls:x'*polls:N*",
            id="progression",
        ),
        pytest.param(
            [],
            "[pytest]\nkling_outcome = failed:oops\n",
            "--kling-outcome / kling_outcome: *reason must be one of*",
            id="ini-outcome",
        ),
        pytest.param(
            ["--kling-base-urls=ftp://x"],
            "",
            "--kling-base-urls / kling_base_urls: base URL must be http(s)*",
            id="base-url",
        ),
        pytest.param(
            ["--kling-pass-through=http://"],
            "",
            "--kling-pass-through / kling_pass_through: *names no host*",
            id="pass-through",
        ),
        pytest.param(
            ["--kling-key-pairs=ak-only"],
            "",
            "--kling-key-pairs / kling_key_pairs: use ACCESS_KEY:SECRET_KEY, got 'ak-only'",
            id="key-pairs",
        ),
        pytest.param(
            ["--kling-faces=nonesuch"], "", "--kling-faces / kling_faces: unknown face(s) *nonesuch*", id="faces"
        ),
        pytest.param(["--kling-slots=0"], "", "--kling-slots / kling_slots: must be a whole number >= 1*", id="slots"),
    ],
)
def test_a_bad_option_value_is_one_usage_error_at_start_up(
    pytester: pytest.Pytester, args: list[str], ini: str, message: str
) -> None:
    _project(
        pytester,
        "\n".join(f"def test_{i}(kling_mock):\n    pass\n" for i in range(3)),
        **({"ini": ini} if ini else {}),
    )
    result = pytester.runpytest("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    assert result.stderr.str().count("ERROR:") == 1
    result.stdout.no_fnmatch_line("*test_0*")  # no test ran, so none reports the error again


def test_option_names_agree_across_command_line_ini_and_marker() -> None:
    from kling_testkit.plugin import MARKER_OPTIONS, SETTINGS

    assert {s.name for s in SETTINGS} == MARKER_OPTIONS
    for setting in SETTINGS:
        assert setting.option == "--kling-" + setting.name.replace("_", "-")
        assert setting.ini == "kling_" + setting.name


@pytest.mark.parametrize(
    ("args", "ini", "old"),
    [
        pytest.param(["--kling-key=sk-old", "--kling-base-url=https://gw.example"], "", "--kling-key", id="options"),
        pytest.param(
            [], "[pytest]\nkling_base_url = https://gw.example\nkling_keys = sk-old\n", "kling_base_url", id="ini"
        ),
    ],
)
def test_the_old_spellings_still_work_and_warn(pytester: pytest.Pytester, args: list[str], ini: str, old: str) -> None:
    _project(
        pytester,
        """
        def test_old(kling_mock):
            assert kling_mock.base_urls == ("https://gw.example",)
            created = httpx.post("https://gw.example/v1/video/generations", json=BODY, headers={"Authorization": "Bearer sk-old"})
            assert created.status_code == 200
        """,
        **({"ini": ini} if ini else {}),
    )
    result = pytester.runpytest("-p", "no:cacheprovider", *args)
    result.assert_outcomes(passed=1, warnings=1 + (args != []))
    result.stdout.fnmatch_lines([f"*DeprecationWarning: kling-testkit: {old} is the old spelling of *"])


VIRTUAL_TIME_TESTS = """
import time

def test_sleeps_move_the_fake(kling_mock):
    before = kling_mock.clock.now()
    time.sleep(0.001)  # a real millisecond if virtual time were off
    assert kling_mock.clock.now() == before + 0.001
    assert time.time() == kling_mock.clock.now()
"""


@pytest.mark.parametrize(
    ("args", "ini", "marker"),
    [
        pytest.param(["--kling-virtual-time"], "", "", id="option"),
        pytest.param([], "[pytest]\nkling_virtual_time = true\n", "", id="ini"),
        pytest.param([], "", "pytestmark = pytest.mark.kling(virtual_time=True)\n", id="marker"),
    ],
)
def test_virtual_time_is_switched_on_by_option_ini_key_or_marker(
    pytester: pytest.Pytester, args: list[str], ini: str, marker: str
) -> None:
    _project(pytester, marker + VIRTUAL_TIME_TESTS, **({"ini": ini} if ini else {}))
    pytester.runpytest("-p", "no:cacheprovider", *args).assert_outcomes(passed=1)


def test_virtual_time_is_off_by_default(pytester: pytest.Pytester) -> None:
    _project(pytester, VIRTUAL_TIME_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)


def test_virtual_time_follows_the_live_servers_clock(pytester: pytest.Pytester) -> None:
    _project(
        pytester,
        """
        import time
        import requests

        @pytest.mark.kling(virtual_time=True, progression="seconds:30")
        def test_client_waits_in_virtual_time(kling_server):
            url = kling_server.base_url + "/v1/video/generations"
            task = requests.post(url, json=BODY, headers=AUTH, timeout=10).json()
            time.sleep(65)
            assert requests.get(f"{url}/{task['task_id']}", headers=AUTH, timeout=10).json()["status"] == "completed"
        """,
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_an_unmatched_host_fails_the_test_by_default_naming_the_url(pytester: pytest.Pytester) -> None:
    _project(
        pytester,
        """
        def test_typo_in_the_host(kling_mock):
            httpx.get("https://api.modelstrem.ai/v1/video/generations/task_x", headers=AUTH)

        def test_a_client_that_swallows_the_error(kling_mock):
            try:
                httpx.get("http://api.modelstream.ai/v1/video/generations/task_x", headers=AUTH)
            except Exception:
                pass
        """,
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1, passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*the Kling fake refused 1 request(s) the test did not see fail: GET http://api.modelstream.ai/*",
            "*UnmatchedRequest: the Kling fake refused GET https://api.modelstrem.ai/v1/video/generations/task_x: "
            "it serves https://api.modelstream.ai*",
        ]
    )


@pytest.mark.parametrize(
    ("args", "ini", "marker"),
    [
        pytest.param(["--kling-pass-through=127.0.0.1"], "", "", id="option"),
        pytest.param([], "[pytest]\nkling_pass_through =\n    127.0.0.1\n", "", id="ini"),
        pytest.param([], "", "pytestmark = pytest.mark.kling(pass_through=['127.0.0.1'])\n", id="marker"),
    ],
)
def test_passing_a_host_through_is_explicit(pytester: pytest.Pytester, args: list[str], ini: str, marker: str) -> None:
    _project(
        pytester,
        marker
        + textwrap.dedent(
            """
            def test_reaches_another_local_server(kling_mock, kling_server):
                assert httpx.get(kling_server.base_url + "/openapi.json").status_code == 200
                with pytest.raises(AssertionError, match="refused GET http://localhost"):
                    httpx.get(kling_server.base_url.replace("127.0.0.1", "localhost") + "/openapi.json")
                assert len(kling_mock.unmatched) == 1
                kling_mock.unmatched.clear()  # the refusal was expected: the fixture need not report it
            """
        ),
        **({"ini": ini} if ini else {}),
    )
    pytester.runpytest("-p", "no:cacheprovider", *args).assert_outcomes(passed=1)


def test_the_fixture_closes_the_admin_client_so_no_socket_leaks(pytester: pytest.Pytester) -> None:
    _project(
        pytester,
        """
        import gc

        def test_uses_the_admin_api(kling_server):
            admin = kling_server.admin()
            assert admin.advance_clock(5) == kling_server.clock.now()
            assert kling_server.admin() is admin

        def test_next(kling_server):
            gc.collect()  # a leaked socket of the previous test would warn here
            assert kling_server.admin().tasks() == []
        """,
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-W", "error", "-p", "no:randomly")
    result.assert_outcomes(passed=2)


def test_settings_fixtures_can_be_overridden_in_a_conftest(pytester: pytest.Pytester) -> None:
    _project(
        pytester,
        """
        def test_overridden(kling_mock):
            assert httpx.post(URL, json=BODY, headers={"Authorization": "Bearer anything"}).status_code == 200
        """,
        conftest="""
        import pytest

        @pytest.fixture
        def kling_options(kling_options):
            return {**kling_options, "keys": ["*"]}
        """,
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_kling_server_serves_a_requests_client_and_resets_between_tests(pytester: pytest.Pytester) -> None:
    _project(
        pytester,
        """
        import requests

        @pytest.mark.parametrize("run", [1, 2])
        def test_server(kling_server, run):
            assert kling_server.tasks() == []
            created = requests.post(kling_server.base_url + "/v1/video/generations", json=BODY, headers=AUTH, timeout=10)
            assert created.status_code == 200

        @pytest.mark.kling(seed=3)
        def test_per_test_seed_is_refused(kling_server):
            pass

        def test_contract(kling_contract):
            assert "video_generations.create" in kling_contract.operations
        """,
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*seed is per session*"])


def test_an_error_in_the_live_server_fails_the_test_that_caused_it(pytester: pytest.Pytester) -> None:
    _project(
        pytester,
        """
        def test_breaks_the_server(kling_server, monkeypatch):
            def boom(request):
                raise RuntimeError("fake bug")
            monkeypatch.setattr(kling_server.service, "handle", boom)
            assert httpx.get(kling_server.base_url + "/openapi.json").status_code == 500
        """,
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*ServerError: the live server raised RuntimeError: fake bug*"])


def test_importing_the_plugin_loads_no_heavy_module() -> None:
    # The plugin's import is paid by every pytest run of an installing project: the fake, its
    # web stack and respx must wait for a fixture. (Its time is measured in bench_inprocess.)
    code = (
        "import sys, kling_testkit.plugin; "
        "print(sorted(m for m in ('mockserver', 'respx', 'httpx', 'uvicorn', 'starlette', 'jsonschema') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


OFFICIAL = """
import jwt


def token(api, ak, sk):
    now = api.clock.now()
    return jwt.encode({"iss": ak, "exp": now + 1800, "nbf": now - 5}, sk, algorithm="HS256")


def create(api, ak, sk, url="https://api-singapore.klingai.com"):
    headers = {"Authorization": "Bearer " + token(api, ak, sk)}
    body = {"model_name": "kling-v2-6", "prompt": "a fox"}
    return httpx.post(url + "/v1/videos/text2video", json=body, headers=headers).json()
"""


@pytest.mark.parametrize(
    ("args", "ini", "marker"),
    [
        pytest.param(["--kling-key-pairs=ak-mine:my-secret-of-more-than-thirty-two-bytes"], "", "", id="option"),
        pytest.param([], "[pytest]\nkling_key_pairs = ak-mine:my-secret-of-more-than-thirty-two-bytes\n", "", id="ini"),
        pytest.param(
            [], "", '@pytest.mark.kling(key_pairs={"ak-mine": "my-secret-of-more-than-thirty-two-bytes"})', id="marker"
        ),
    ],
)
def test_the_official_faces_key_pairs_come_from_option_ini_key_or_marker(
    pytester: pytest.Pytester, args: list[str], ini: str, marker: str
) -> None:
    _project(
        pytester,
        OFFICIAL
        + f"""
{marker}
def test_my_pair_in_process(kling_mock):
    assert create(kling_mock, "ak-mine", "my-secret-of-more-than-thirty-two-bytes")["code"] == 0
    assert create(kling_mock, "ak-test", "sk-test-secret-key-for-kling-testkit")["code"] == 1000

{marker}
def test_my_pair_live(kling_server):
    assert create(kling_server, "ak-mine", "my-secret-of-more-than-thirty-two-bytes", kling_server.base_url)["code"] == 0
""",
        **({"ini": ini} if ini else {}),
    )
    result = pytester.runpytest("-p", "no:cacheprovider", *args)
    result.assert_outcomes(passed=2)


def test_slots_and_faces_reach_the_fake(pytester: pytest.Pytester) -> None:
    _project(
        pytester,
        OFFICIAL
        + """
@pytest.mark.kling(slots=1)
def test_one_slot(kling_mock):
    ak, sk = "ak-test", "sk-test-secret-key-for-kling-testkit"
    assert create(kling_mock, ak, sk)["code"] == 0
    assert create(kling_mock, ak, sk)["code"] == 1303

@pytest.mark.kling(faces=["official"])
def test_only_the_official_face(kling_mock):
    assert "https://api.modelstream.ai" not in kling_mock.base_urls
    assert create(kling_mock, "ak-test", "sk-test-secret-key-for-kling-testkit")["code"] == 0
""",
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
