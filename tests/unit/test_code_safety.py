"""Guards on the code itself: nothing loads or runs what a file or the config supplies.

- Checkpoints are read with `weights_only=True` (torch.load, Lightning's
  `ckpt_path=` and `load_from_checkpoint`), raw pickles only through the
  allow-listing unpickler, YAML only with the safe loader.
- No eval/exec/compile, no shell commands built from values: no `os.system`,
  no `shell=True`, and any `shell:` of a rule quotes every value it formats in.

The checkers run on the package, the workflow scripts, the benchmarks and the
rules, and are themselves tested on snippets that must be caught.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYTHON_FILES = sorted(
    [
        *(ROOT / "src").rglob("*.py"),
        *(ROOT / "workflow" / "scripts").glob("*.py"),
        *(ROOT / "benchmarks").glob("*.py"),
    ]
)
RULE_FILES = sorted([ROOT / "workflow" / "Snakefile", *(ROOT / "workflow" / "rules").glob("*.smk")])

_DYNAMIC_CODE = {"eval", "exec", "compile", "__import__"}
# Module aliases whose `load`-like functions unpickle arbitrary objects.
_UNPICKLERS = {
    ("pickle", "load"),
    ("pickle", "loads"),
    ("pickle", "Unpickler"),
    ("pd", "read_pickle"),
    ("pandas", "read_pickle"),
    ("joblib", "load"),
    ("dill", "load"),
    ("dill", "loads"),
    ("cloudpickle", "load"),
    ("cloudpickle", "loads"),
    ("yaml", "load"),
    ("yaml", "unsafe_load"),
    ("yaml", "full_load"),
}


def _keyword_is_true(call: ast.Call, name: str) -> bool:
    return any(
        k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is True
        for k in call.keywords
    )


def _dotted(node: ast.expr) -> tuple[str, str] | None:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return node.value.id, node.attr
    return None


def python_findings(source: str, name: str) -> list[str]:
    """Unsafe loading or dynamic code in one Python source, as `name:line: what`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        where = f"{name}:{node.lineno}"
        func = node.func
        dotted = _dotted(func)
        if isinstance(func, ast.Name) and func.id in _DYNAMIC_CODE:
            found.append(f"{where}: {func.id}() runs code built at run time")
        if dotted == ("torch", "load") and not _keyword_is_true(node, "weights_only"):
            found.append(f"{where}: torch.load without weights_only=True")
        lightning_load = isinstance(func, ast.Attribute) and func.attr == "load_from_checkpoint"
        resumes = any(k.arg == "ckpt_path" for k in node.keywords)
        fabric_load = dotted is not None and dotted[0] == "fabric" and dotted[1] == "load"
        if (lightning_load or resumes or fabric_load) and not _keyword_is_true(
            node, "weights_only"
        ):
            found.append(f"{where}: Lightning checkpoint loading without weights_only=True")
        # data/unpickle.py subclasses pickle.Unpickler (a class base, not a call) to allow-list
        if dotted in _UNPICKLERS:
            found.append(f"{where}: {'.'.join(dotted)} can run code stored in the file")
        if dotted == ("np", "load") and _keyword_is_true(node, "allow_pickle"):
            found.append(f"{where}: np.load with allow_pickle=True")
        if dotted in {("os", "system"), ("os", "popen")}:
            found.append(f"{where}: {'.'.join(dotted)} runs a shell command")
        if _keyword_is_true(node, "shell"):
            found.append(f"{where}: shell=True")
    return found


_PLACEHOLDER = re.compile(r"(?<!\{)\{(?!\{)([^{}]*)\}")
_SAFE_UNQUOTED = re.compile(r"^(threads|resources\.\w+)$")
_DIRECTIVE = re.compile(r"^(\s*)(shell):\s*(.*)$")


def rule_findings(text: str, name: str) -> list[str]:
    """Dynamic code or unquoted values in the shell commands of a Snakefile / .smk file."""
    found = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        code = line.split("#", 1)[0]
        if re.search(r"(?<![\w.])(eval|exec)\(", code):
            found.append(f"{name}:{i + 1}: eval/exec runs code built at run time")
        commands: list[tuple[int, str]] = []
        match = _DIRECTIVE.match(code)
        if match:
            indent = len(match.group(1))
            commands.append((i, match.group(3)))
            for j in range(i + 1, len(lines)):
                body = lines[j]
                if body.strip() and len(body) - len(body.lstrip()) <= indent:
                    break
                commands.append((j, body))
        elif re.search(r"(?<![\w.])shell\(", code):
            commands.append((i, code))
        for j, command in commands:
            for placeholder in _PLACEHOLDER.findall(command):
                if not placeholder.endswith(":q") and not _SAFE_UNQUOTED.match(placeholder):
                    found.append(
                        f"{name}:{j + 1}: shell command formats {{{placeholder}}} unquoted; "
                        "write {" + placeholder + ":q}"
                    )
    return found


def test_no_unsafe_loading_or_dynamic_code_in_python() -> None:
    assert PYTHON_FILES, "no Python file found to check"
    found = [
        finding
        for path in PYTHON_FILES
        for finding in python_findings(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert found == []


def test_rules_build_no_shell_command_or_code_from_values() -> None:
    assert len(RULE_FILES) > 1
    found = [
        finding
        for path in RULE_FILES
        for finding in rule_findings(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert found == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("x = eval(text)", "eval() runs code"),
        ("exec(config['hook'])", "exec() runs code"),
        ("state = torch.load(path)", "torch.load without weights_only=True"),
        ("state = torch.load(path, weights_only=False)", "torch.load without weights_only=True"),
        ("trainer.fit(module, ckpt_path=last)", "Lightning checkpoint loading"),
        ("Model.load_from_checkpoint(path)", "Lightning checkpoint loading"),
        ("state = fabric.load(path, state)", "Lightning checkpoint loading"),
        ("df = pd.read_pickle(path)", "pd.read_pickle can run code"),
        ("obj = pickle.loads(data)", "pickle.loads can run code"),
        ("cfg = yaml.load(text, Loader=yaml.Loader)", "yaml.load can run code"),
        ("a = np.load(path, allow_pickle=True)", "allow_pickle=True"),
        ("os.system(f'touch {name}')", "os.system runs a shell command"),
        ("subprocess.run(cmd, shell=True)", "shell=True"),
    ],
)
def test_the_python_checker_catches(source: str, expected: str) -> None:
    found = python_findings(source, "snippet.py")
    assert len(found) == 1 and expected in found[0], found


def test_the_python_checker_lets_safe_calls_pass() -> None:
    source = "\n".join(
        [
            "model.eval()",
            "pattern = re.compile('x')",
            "state = torch.load(path, map_location='cpu', weights_only=True)",
            "trainer.fit(module, ckpt_path=last, weights_only=True)",
            "cfg = yaml.safe_load(text)",
            "subprocess.run([sys.executable, script], check=True)",
            "a = np.load(path)",
        ]
    )
    assert python_findings(source, "ok.py") == []


def test_the_rule_checker_catches_unquoted_values_and_dynamic_code() -> None:
    text = "\n".join(
        [
            "rule bad:",
            "    params:",
            "        name=config['dataset']['name'],",
            "    shell:",
            '        "touch {output:q} && echo {params.name} > {log}"',
            "",
            "rule also_bad:",
            '    shell: "cat {input}"',
            "",
            "rule fine:",
            "    threads: 2",
            '    shell: "tool --threads {threads} {input:q} > {output:q}"',
            "",
            "x = eval(config['expr'])",
        ]
    )
    found = rule_findings(text, "rules.smk")
    assert found == [
        "rules.smk:5: shell command formats {params.name} unquoted; write {params.name:q}",
        "rules.smk:5: shell command formats {log} unquoted; write {log:q}",
        "rules.smk:8: shell command formats {input} unquoted; write {input:q}",
        "rules.smk:14: eval/exec runs code built at run time",
    ]
