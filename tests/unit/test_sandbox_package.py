"""hotfolder_sandbox stands alone: it imports nothing from hotfolder, and finds its own data."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from hotfolder_sandbox import SandboxError, start_sandbox


def test_the_sandbox_serves_without_importing_hotfolder():
    script = textwrap.dedent(
        """
        import sys
        import httpx
        from hotfolder_sandbox import start_sandbox

        with start_sandbox() as sandbox:
            models = httpx.get(sandbox.base_url + "/models", params={"type": "upscale"})
        assert models.status_code == 200 and models.json()["data"], models.text
        loaded = sorted(m for m in sys.modules if m == "hotfolder" or m.startswith("hotfolder."))
        assert not loaded, loaded
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


def test_a_taken_port_is_a_sandbox_error_with_a_hint():
    with start_sandbox() as sandbox:
        port = int(sandbox.base_url.rsplit(":", 1)[1].split("/")[0])
        with pytest.raises(SandboxError, match="cannot listen") as caught:
            start_sandbox(port=port)
    assert caught.value.hint and "--port" in caught.value.hint
    assert caught.value.hint in str(caught.value)
