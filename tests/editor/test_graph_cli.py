"""`editor graph` end to end on the tiny workspace decomposition: the three outputs, a before/after edit, bad input,
and the HTML page checked as a document (self-contained: nothing it would fetch) and, in the slow tier, in a
headless Chromium when one is installed."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.editor.clitools import Workspace, assert_clean, assert_user_error, invoke

PROMPT = "@user you are such a"


def graph(ws: Workspace, out: Path, *extra: str | Path):
    return invoke("graph", "--model", ws.model, "--decomposition", ws.dec, "--prompt", PROMPT, "--out", out, "--pgd-steps", "3", *extra)


@pytest.fixture(scope="module")
def drawn(workspace: Workspace, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("graph") / "g"
    result = graph(workspace, out, "--threshold", "0.05")
    assert result.exit_code == 0, result.output
    assert_clean(result)
    assert result.stdout.strip().endswith(str(out))
    return out


class Page(HTMLParser):
    """Tags with their attributes, and the text of every script."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def test_graph_writes_json_html_and_png(drawn: Path):
    assert {p.name for p in drawn.iterdir()} >= {"graph.json", "graph.html", "graph.png"}
    assert drawn.joinpath("graph.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = json.loads(drawn.joinpath("graph.json").read_text())
    assert result["format"] == "editor-graph/1" and result["prompt"] == PROMPT
    (g,) = result["graphs"]
    kinds = [d["kind"] for d in g["nodes"]]
    assert kinds.count("logit") == 1 and "component" in kinds
    ids = {d["id"] for d in g["nodes"]}
    assert g["edges"] and all(e["source"] in ids and e["target"] in ids for e in g["edges"])
    assert g["counts"]["nodes"] == len(g["nodes"]) and g["counts"]["edges"] == len(g["edges"])
    assert g["target"]["token"] == g["top"][0]["token"]  # default target: the top prediction
    f = g["faithfulness"]
    assert f["full"]["rank"] == 0 and f["full"]["prob"] == pytest.approx(g["target"]["prob"], rel=1e-5)
    assert f["pgd"]["prob"] <= f["graph"]["prob"] + 1e-9
    assert isinstance(f["verdict"], str) and f["curve"][-1]["nodes"] == g["counts"]["nodes_above_threshold"]
    for d in g["nodes"]:
        assert {"x", "y", "row"} <= set(d)
        if d["kind"] == "component":
            assert d["ci"] > 0.05 and len(d["promotes"]) == 5 and isinstance(d["fires_on"], list)


def test_html_is_self_contained_and_draws_every_node_and_edge(drawn: Path):
    result = json.loads(drawn.joinpath("graph.json").read_text())
    (g,) = result["graphs"]
    text = drawn.joinpath("graph.html").read_text(encoding="utf-8")
    page = parse(drawn / "graph.html")
    assert "http://" not in text and "https://" not in text and "//cdn" not in text
    for tag, attrs in page.tags:
        assert "src" not in attrs, (tag, attrs)  # no script, image or frame from anywhere
        assert tag not in {"link", "iframe", "img", "object", "embed"}, tag
        assert not attrs.get("href"), (tag, attrs)
    nodes = [a for t, a in page.tags if "node" in a.get("class", "").split()]
    edges = [a for t, a in page.tags if a.get("class") == "edge"]
    assert len(nodes) == len(g["nodes"]) and len(edges) == len(g["edges"])
    assert {a["data-id"] for a in nodes} == {d["id"] for d in g["nodes"]}
    info = json.loads(next(s for s in page.scripts if s.strip().startswith("{")))
    assert set(info["0"]) == {d["id"] for d in g["nodes"]}


@pytest.mark.slow  # a forget run and two graphs: about 35 s on a loaded 2-core machine
def test_graph_before_and_after_an_edit(workspace: Workspace, tmp_path):
    edited = tmp_path / "edited"
    forget = invoke(
        "forget", "--method", "vpd-remove", "--model", workspace.model, "--decomposition", workspace.dec,
        "--dataset", workspace.toxic, "--retain", workspace.retain, "--out", edited, "--set", "max_components=3",
    )  # fmt: skip
    assert forget.exit_code == 0, forget.output
    removed = {(c["module"], c["index"]) for c in json.loads((edited / "edit.json").read_text())["components"]}
    # The forget output links each removed component to its page, with top contexts from the forget set.
    card = (edited / "README.md").read_text()
    for module, index in removed:
        assert f"(components/{module}-{index}.html)" in card
        page = parse(edited / "components" / f"{module}-{index}.html")
        assert [a for t, a in page.tags if a.get("class") == "fire"]
    out = tmp_path / "g"
    result = graph(workspace, out, "--edit", edited, "--threshold", "0.01", "--json")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert [g["title"] for g in printed["graphs"]] == ["before the edit", "after the edit"]
    full = json.loads((out / "graph.json").read_text())
    before, after = full["graphs"]
    assert before["target"]["id"] == after["target"]["id"]
    e = full["edit"]
    assert {(c["module"], c["index"]) for c in e["components"]} == removed
    assert e["target_prob_before"] == pytest.approx(before["target"]["prob"]) and e["target_prob_after"] == pytest.approx(after["target"]["prob"])
    # The "after" forward is the edited checkpoint's own.
    from editor.model_io import load_model

    lm, tok = load_model(str(edited))
    import torch

    with torch.no_grad():
        logits = lm(input_ids=tok(PROMPT, return_tensors="pt")["input_ids"]).logits[0, -1]
    assert after["faithfulness"]["full"]["logit"] == pytest.approx(float(logits[after["target"]["id"]]), abs=1e-4)
    marked = [d for d in after["nodes"] if d.get("edited")]
    assert all((d["module"], d["index"]) in removed and d["edited"] == "removed" for d in marked)
    # A removed component writes nothing after the edit: no edge leaves it.
    assert not {x["source"] for x in after["edges"]} & {d["id"] for d in marked}
    assert (out / "graph.png").is_file()


def test_graph_bad_input(workspace: Workspace, tmp_path):
    assert_user_error(graph(workspace, tmp_path / "a", "--edit", tmp_path), "--edit", "edit.json")
    assert_user_error(
        invoke("graph", "--model", workspace.model, "--decomposition", workspace.dec, "--prompt", " ", "--out", tmp_path / "b"), "--prompt is empty"
    )
    assert_user_error(graph(workspace, tmp_path / "c", "--target-token", "hello there friend"), "--target-token", "tokens")
    assert not (tmp_path / "c").exists()


CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome", "chrome") if shutil.which(n)), None)


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium on this machine (apt-get install chromium)")
def test_html_renders_in_headless_chromium(drawn: Path, tmp_path):
    """The page in a real browser: the rendered DOM holds every node and edge, a screenshot is produced, and
    the browser makes no network request (all requests are refused by an unreachable proxy)."""
    result = json.loads(drawn.joinpath("graph.json").read_text())
    (g,) = result["graphs"]
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>"]
    url = drawn.joinpath("graph.html").resolve().as_uri()
    dom = subprocess.run([str(CHROMIUM), *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr
    page = Page()
    page.feed(dom.stdout)
    assert len([a for t, a in page.tags if "node" in a.get("class", "").split()]) == len(g["nodes"])
    assert len([a for t, a in page.tags if a.get("class") == "edge"]) == len(g["edges"])
    shot = tmp_path / "shot.png"
    run = subprocess.run([str(CHROMIUM), *flags, f"--screenshot={shot}", "--window-size=1400,900", url], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_components_html_pages(workspace: Workspace, tmp_path):
    out = tmp_path / "pages"
    args = ["components", "--model", workspace.model, "--decomposition", workspace.dec, "--dataset", workspace.toxic, "--top", "4", "--docs", "60"]
    result = invoke(*args, "--html", out, "--json")
    assert result.exit_code == 0, result.output
    assert_clean(result)
    rows = json.loads(result.stdout)["components"]
    from editor.component_pages import page_name

    names = {page_name(r["module"], r["index"]) for r in rows}
    assert {p.name for p in out.iterdir()} >= names | {"index.html"}
    index = parse(out / "index.html")
    assert {a["href"] for t, a in index.tags if t == "a"} == names
    for name in names:
        text = (out / name).read_text(encoding="utf-8")
        page = parse(out / name)
        assert "http://" not in text and "https://" not in text
        fired = [a for t, a in page.tags if a.get("class") == "fire"]
        assert 1 <= len(fired) <= 8  # one highlighted token per context
        assert sum(1 for t, _ in page.tags if t == "tr") == len(fired) + 1
    assert_user_error(invoke(*args, "--html", out), "--html", "--force")  # an existing folder is replaced only with --force
    assert invoke(*args, "--html", out, "--force").exit_code == 0


NODE = shutil.which("node")

# A stand-in for the browser's DOM, enough for the page's script: elements with dataset, classList and listeners.
DOM_STUB = """
const fs = require('fs');
const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
class El {
  constructor(cls, data) { this.cls = new Set(cls); this.dataset = data; this.on = {}; this.style = {}; this.textContent = ''; }
  get classList() { const c = this.cls; return { add: (...x) => x.forEach(v => c.add(v)), remove: (...x) => x.forEach(v => c.delete(v)), contains: v => c.has(v) }; }
  addEventListener(k, f) { this.on[k] = f; }
  closest() { return svg; }
}
const nodes = spec.nodes.map(id => new El(['node'], {id, graph: '0'}));
const edges = spec.edges.map(([s, t]) => new El(['edge'], {s, t}));
const svg = new El([], {});
svg.querySelectorAll = sel => sel === '.node' ? nodes : sel === '.edge' ? edges : sel === '.edge,.node' ? edges.concat(nodes) : nodes.concat(edges).filter(x => x.cls.has('dim') || x.cls.has('hot'));
const tip = new El([], {});
global.document = {
  getElementById: id => id === 'node-info' ? {textContent: spec.info} : tip,
  querySelectorAll: sel => sel === '.node' ? nodes : sel === 'svg' ? [svg] : [],
};
eval(spec.script);
const target = nodes[nodes.length - 1];
target.on.mousemove({clientX: 1, clientY: 2});
if (tip.style.display !== 'block' || !tip.textContent) throw new Error('no tooltip');
target.on.click({stopPropagation() {}});
const hot = edges.filter(e => e.cls.has('hot')).length, want = edges.filter(e => e.dataset.t === target.dataset.id || e.dataset.s === target.dataset.id).length;
const dim = edges.filter(e => !e.cls.has('hot') && e.cls.has('dim')).length;
svg.on.click();
const left = nodes.concat(edges).filter(x => x.cls.has('dim') || x.cls.has('hot')).length;
console.log(JSON.stringify({hot, want, dim, left}));
"""


@pytest.mark.skipif(NODE is None, reason="no node.js to run the page's script")
def test_page_script_runs_hover_and_click(drawn: Path, tmp_path):
    """The page's own script, run by node.js against a minimal DOM: hovering shows a tooltip, clicking the target
    highlights exactly its edges and dims the rest, clicking the background clears it."""
    page = parse(drawn / "graph.html")
    script = next(s for s in page.scripts if "addEventListener" in s)
    nodes = [a["data-id"] for t, a in page.tags if "node" in a.get("class", "").split()]
    edges = [[a["data-s"], a["data-t"]] for t, a in page.tags if a.get("class") == "edge"]
    info = next(s for s in page.scripts if s.strip().startswith("{"))
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"script": script, "nodes": nodes, "edges": edges, "info": info}))
    stub = tmp_path / "stub.js"
    stub.write_text(DOM_STUB)
    run = subprocess.run([str(NODE), str(stub), str(spec)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["hot"] == out["want"] > 0 and out["dim"] == len(edges) - out["want"] and out["left"] == 0


def test_target_token_chooses_the_explained_logit(workspace: Workspace, tmp_path, shipped_tokenizer):
    result = graph(workspace, tmp_path / "g", "--target-token", " the", "--json", "--pgd-steps", "0")
    assert result.exit_code == 0, result.output
    (g,) = json.loads(result.stdout)["graphs"]
    assert g["target"]["id"] == shipped_tokenizer.encode(" the", add_special_tokens=False)[0] and g["target"]["token"] == " the"
