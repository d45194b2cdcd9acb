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
        pytest.param(["--kling-progression=immediate", "--kling-base-url=https://gw.example"], "", id="options"),
        pytest.param([], "[pytest]\nkling_progression = immediate\nkling_base_url = https://gw.example\n", id="ini"),
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


def test_a_bad_seed_option_is_a_usage_error(pytester: pytest.Pytester) -> None:
    _project(pytester, "def test_x(kling_mock):\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--kling-seed=abc")
    assert "must be an integer or 'random'" in result.stdout.str() + result.stderr.str()


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
