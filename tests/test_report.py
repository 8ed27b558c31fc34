"""Tests of losstopo.report; the ``browser`` test opens the report in headless Chromium.

The browser is driven through the Chrome DevTools Protocol over ``--remote-debugging-pipe``
(file descriptors 3 and 4), with the standard library only: no Playwright/Selenium needed, just
Debian's ``chromium``.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from losstopo import Grid, LossField, ProjectedPath
from losstopo.errors import InvalidParameterError
from losstopo.report import write_report


def make_run(tmp_path: Path, *, paraview: bool = True) -> Path:
    from losstopo.plot import plot_contour, plot_profile, save_figure

    run = tmp_path / "run"
    run.mkdir()
    g = Grid.square(21, 1.0, 2)
    x, y = np.meshgrid(*g.axes.values(), indexing="ij")
    field = LossField(
        (x**2 - 0.5) ** 2 + y**2 + 0.1,
        g,
        attrs={"projector": "pca", "seed": 7, "split": "train <script>"},
        paths={"sgd": ProjectedPath([[0.9, 0.9], [0.7, 0.0]], [0, 10], run="sgd")},
    )
    field.save(run / "mlp_plane.h5")
    save_figure(plot_contour(field), run / "mlp_contour.png")
    g1 = Grid.square(21, 1.0, 1)
    profile = LossField(g1.axes["x"] ** 2, g1, metrics={"test_loss": g1.axes["x"] ** 2 + 0.1})
    profile.save(run / "mlp_interpolation.h5")
    save_figure(plot_profile(profile), run / "mlp_interpolation.png")
    (run / "summary.json").write_text(
        json.dumps({"data": "digits", "models": {"mlp": {"test_accuracy": 0.93, "seconds": 1.5}}})
    )
    (run / "topology.json").write_text(
        json.dumps(
            {
                "mlp": {
                    "connectivity": "freudenthal",
                    "critical_counts": {"0": 2, "1": 1},
                    "join_pairs": [[0.1, 1.0]] * 30,
                }
            }
        )
    )
    (run / "pca_fidelity.csv").write_text(
        "projector,projection_error,loss_error\npca,0.12,0.03\nautoencoder,0.05,0.01\n"
    )
    if paraview:
        pytest.importorskip("pyvista")
        from losstopo.export import write_paraview

        (run / "paraview").mkdir()
        write_paraview(field, run / "paraview")
    return run


def test_report_contains_every_part(tmp_path):
    run = make_run(tmp_path)
    out = write_report(run)
    assert out == run / "report.html"
    page = out.read_text()
    assert page.count('src="data:image/png;base64,') == 3  # 2 PNGs + the fidelity chart
    for text in ("Summary", "models.mlp.test_accuracy", "0.93", "Topology", "freudenthal", "Projector fidelity",
                 "autoencoder", "Fields and provenance", "attrs.projector", "pca", "attrs.seed",
                 'href="paraview/landscape.vtm"', 'href="paraview/open_in_paraview.py"'):  # fmt: skip
        assert text in page, text
    assert "<script" not in page  # attrs are escaped, the page has no scripts
    assert "train &lt;script&gt;" in page
    assert "[30 items" in page  # long lists are summarised
    for chunk in page.split("base64,")[1:]:
        data = base64.b64decode(chunk.split('"', 1)[0])
        assert data[:4] == b"\x89PNG"


def test_report_survives_missing_and_broken_pieces(tmp_path):
    run = tmp_path / "empty"
    run.mkdir()
    page = write_report(run).read_text()
    assert "no figures, tables or fields" in page
    (run / "summary.json").write_text("{not json")
    (run / "broken.h5").write_bytes(b"not hdf5")
    (run / "fake.png").write_bytes(b"GIF89a")
    page = write_report(run).read_text()
    assert "summary.json: not readable JSON" in page
    assert "broken.h5" in page and "fake.png: skipped" in page


def test_report_draws_fields_without_figures_and_custom_out(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    g = Grid.square(11, 1.0, 2)
    x, y = np.meshgrid(*g.axes.values(), indexing="ij")
    LossField(x**2 + y**2 + 1, g).save(run / "bowl.h5")
    other = tmp_path / "elsewhere"
    other.mkdir()
    out = write_report(run, other)
    assert out == other / "report.html"
    assert "bowl (drawn for this report)" in out.read_text()
    assert not (run / "report.html").exists()


def test_report_reads_topology_as_summaries(tmp_path):
    from losstopo.topology import analyze

    run = tmp_path / "run"
    run.mkdir()
    g = Grid.square(31, 2.0, 2)
    x, y = np.meshgrid(*g.axes.values(), indexing="ij")
    field = LossField((x**2 - 1) ** 2 + y**2 + 0.3 * x + 0.5, g)
    topo = analyze(field, min_persistence=0.1)
    field.with_topology(topo).save(run / "well.h5")
    (run / "topology.json").write_text(json.dumps({"well": topo.to_dict()}))
    page = write_report(run).read_text()
    b = topo.basins
    # the summary table of topology.json and the one of the field file's stored topology
    assert page.count("<h4>Basins</h4>") == 2
    assert page.count("Topology stored in the file") == 1
    assert page.count(f"<th>persistent minima (basins)</th><td class=num>{b.n_minima}</td>") == 2
    assert page.count(f"<td>{b[1].persistence:.6g}</td>") == 2  # the second basin's depth
    assert page.count('alt="well (drawn for this report)"') == 1
    (run / "topology.json").write_text(json.dumps({"schema": "losstopo-topology/2"}))
    page = write_report(run).read_text()
    assert "topology.json: not a readable topology summary" in page


def test_report_bad_input(tmp_path):
    with pytest.raises(InvalidParameterError, match="does not exist"):
        write_report(tmp_path / "missing")
    run = tmp_path / "r"
    run.mkdir()
    with pytest.raises(InvalidParameterError, match="does not exist"):
        write_report(run, tmp_path / "no" / "report.html")


# ---------------------------------------------------------------------------------------- browser
CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)


class DevTools:
    """A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe``."""

    def __init__(self, binary: str, profile: Path):
        cmd_r, self._cmd_w = os.pipe()
        self._res_r, res_w = os.pipe()

        def wire() -> None:  # in the child: commands on fd 3, responses on fd 4
            a, b = os.dup(cmd_r), os.dup(res_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        args = [binary, "--headless=new", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                f"--user-data-dir={profile}", "about:blank"]  # fmt: skip
        self.proc = subprocess.Popen(
            args,
            pass_fds=(3, 4),
            preexec_fn=wire,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(cmd_r)
        os.close(res_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._res_r], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._res_r, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def send(
        self,
        method: str,
        params: dict | None = None,
        session: str | None = None,
        timeout: float = 30,
    ) -> dict:
        self._id += 1
        msg: dict = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30) -> dict:
        for ev in self.events:
            if ev.get("method") == method:
                return ev
        deadline = time.monotonic() + timeout
        while True:
            ev = self._read(deadline)
            self.events.append(ev)
            if ev.get("method") == method:
                return ev

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._cmd_w)
        os.close(self._res_r)


@pytest.mark.browser
@pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not found: install it (Debian: apt-get install chromium)"
)
def test_report_renders_in_headless_chromium(tmp_path):
    run = make_run(tmp_path, paraview=False)
    report = write_report(run)
    assert CHROMIUM is not None
    browser = DevTools(CHROMIUM, tmp_path / "profile")
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Emulation.setDeviceMetricsOverride",
                     {"width": 1200, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=session)  # fmt: skip
        browser.send("Page.navigate", {"url": report.resolve().as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired")
        check = (
            "JSON.stringify(Array.from(document.images).map(i => "
            "({ok: i.complete && i.naturalWidth > 0, w: i.naturalWidth, alt: i.alt})))"
        )
        result = browser.send(
            "Runtime.evaluate", {"expression": check, "returnByValue": True}, session=session
        )
        images = json.loads(result["result"]["value"])
        shot = browser.send(
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": True},
            session=session,
        )
        title = browser.send(
            "Runtime.evaluate",
            {"expression": "document.title", "returnByValue": True},
            session=session,
        )
    finally:
        browser.close()
    assert len(images) == 3
    broken = [i["alt"] for i in images if not i["ok"]]
    assert not broken, f"images that did not render: {broken}"
    png = base64.b64decode(shot["data"])
    assert png[:4] == b"\x89PNG" and len(png) > 10_000
    (tmp_path / "report.png").write_bytes(png)
    assert title["result"]["value"].startswith("losstopo report")
    errors = [
        e for e in browser.events
        if e.get("method") == "Runtime.exceptionThrown"
        or (e.get("method") == "Runtime.consoleAPICalled" and e["params"].get("type") in ("error", "assert"))
        or (e.get("method") == "Log.entryAdded" and e["params"]["entry"].get("level") == "error")
    ]  # fmt: skip
    assert not errors, errors


def test_report_counts_in_words_and_says_where_links_work(tmp_path):
    from losstopo.topology import analyze

    run = tmp_path / "run"
    run.mkdir()
    g = Grid.square(15, 1.0, 2)
    x, y = np.meshgrid(*g.axes.values(), indexing="ij")
    field = LossField(x**2 + y**2, g)
    (run / "topology.json").write_text(json.dumps({"bowl": analyze(field).to_dict()}))
    (run / "paraview").mkdir()
    (run / "paraview" / "landscape.vtm").write_text("<VTKFile/>")
    page = write_report(run).read_text()
    assert "1 minimum, 0 1-saddles, 0 2-saddles, 0 maxima" in page
    assert "1 minima" not in page
    assert 'href="paraview/landscape.vtm"' in page
    assert "relative to it" in page and "copy the whole directory" in page
