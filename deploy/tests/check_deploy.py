"""Offline checks of the deploy kit (no terraform binary, no AWS account needed).

Run by scripts/test-deploy.sh with python-hcl2 and parliament installed:

    python deploy/tests/check_deploy.py

Checks, each failure printed with the file it is about; exit 1 if any failed:
  1. every .tf file under deploy/ parses (python-hcl2);
  2. every IAM policy in deploy/iam is JSON, and, filled with example values the way the
     module's templatefile() calls fill it, parliament finds nothing in it;
  3. least privilege: no `*` resource on ecs:RunTask, iam:PassRole, any s3: action,
     ssm:GetParameter(s), secretsmanager:GetSecretValue; no `*` action; iam:PassRole only
     towards ECS tasks;
  4. every templatefile() of a policy passes every placeholder the file uses;
  5. the module's variables and outputs are exactly those docs/aws.md lists, and the
     variables the docs mark required are exactly those without a default;
  6. every file docs/aws.md names under deploy/, docs/ or scripts/ exists;
  7. every `checkov:skip` in the Terraform carries a reason;
  8. every `weir …` flag that docs/aws.md, deploy/ci/* and the module's agent command use
     exists in the weir binary named by WEIR_BIN.
"""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import sys

import hcl2
from parliament import analyze_policy_string

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEPLOY = os.path.join(ROOT, "deploy")
IAM = os.path.join(DEPLOY, "iam")
MODULE = os.path.join(DEPLOY, "terraform", "modules", "weir")
DOCS = os.path.join(ROOT, "docs", "aws.md")
WEIR_BIN = os.environ.get("WEIR_BIN", "")

# What a placeholder looks like once Terraform filled it (one example environment).
EXAMPLE = {
    "region": "eu-west-1",
    "account_id": "123456789012",
    "cluster": "weir-dev",
    "task_role": "weir-dev-flow-task",
    "execution_role": "weir-dev-flow-execution",
    "log_group": "/weir-dev/flows",
    "repository": "weir-dev/flows",
    "ssm_prefix": "/weir-dev/dev",
    "secrets_prefix": "weir-dev/dev",
    "results_bucket": "weir-dev-results-0123",
    "results_prefix": "results",
    "data_bucket": "team-data",
    "kms_key_arn": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "key_parameter": "/weir-dev/keys/agent",
    "ci_key_parameter": "/weir-dev/keys/ci-dev",
    "secret_arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-0123-AbCdEf",
}

# Actions whose resource must never be "*" (an `s3:` prefix means every S3 action).
SCOPED = ("ecs:RunTask", "iam:PassRole", "s3:", "ssm:GetParameters", "ssm:GetParameter",
          "secretsmanager:GetSecretValue")

# Placeholders every module templatefile() call gets from local.common.
COMMON = {"region", "account_id"}

failures: list[str] = []


def fail(where: str, message: str) -> None:
    failures.append(f"{os.path.relpath(where, ROOT)}: {message}")


def rel(path: str) -> str:
    return os.path.relpath(path, ROOT)


def check_terraform_parses() -> int:
    files = sorted(glob.glob(os.path.join(DEPLOY, "**", "*.tf"), recursive=True))
    for path in files:
        try:
            with open(path) as f:
                hcl2.load(f)
        except Exception as e:  # python-hcl2 raises lark errors of several kinds
            fail(path, f"does not parse as HCL: {e}")
    if not files:
        fail(DEPLOY, "no .tf files found")
    return len(files)


def placeholders(text: str) -> set[str]:
    return set(re.findall(r"\$\{([a-z_]+)\}", text))


def fill(text: str) -> str:
    return re.sub(r"\$\{([a-z_]+)\}", lambda m: EXAMPLE.get(m.group(1), m.group(0)), text)


def as_list(v) -> list:
    return v if isinstance(v, list) else [v]


def check_policies() -> int:
    files = sorted(glob.glob(os.path.join(IAM, "*.json")))
    for path in files:
        text = open(path).read()
        try:
            json.loads(text)
        except ValueError as e:
            fail(path, f"not JSON: {e}")
            continue
        unknown = placeholders(text) - EXAMPLE.keys()
        if unknown:
            fail(path, f"placeholders without an example value in check_deploy.py: {sorted(unknown)}")
            continue
        filled = fill(text)
        for finding in analyze_policy_string(filled, include_community_auditors=False).findings:
            fail(path, f"parliament: {finding.issue} {finding.detail} {finding.location}")
        for st in json.loads(filled)["Statement"]:
            sid = st.get("Sid", "?")
            actions = as_list(st.get("Action", []))
            resources = as_list(st.get("Resource", []))
            if st.get("Effect") != "Allow":
                continue
            if any(a == "*" or a.endswith(":*") for a in actions):
                fail(path, f"statement {sid}: a wildcard action {actions}")
            for a in actions:
                if any(a == s or (s.endswith(":") and a.startswith(s)) for s in SCOPED) and "*" in resources:
                    fail(path, f"statement {sid}: {a} on resource \"*\"")
            if "iam:PassRole" in actions:
                passed = st.get("Condition", {}).get("StringEquals", {}).get("iam:PassedToService")
                if passed != "ecs-tasks.amazonaws.com":
                    fail(path, f"statement {sid}: iam:PassRole without iam:PassedToService = ecs-tasks.amazonaws.com")
    if not files:
        fail(IAM, "no policies found")
    return len(files)


def balanced(text: str, start: int) -> str:
    """The text of the parenthesised expression opening at `start`."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return text[start:i + 1]
    return text[start:]


def check_templatefile_calls() -> int:
    calls = 0
    for path in sorted(glob.glob(os.path.join(DEPLOY, "terraform", "**", "*.tf"), recursive=True)):
        text = open(path).read()
        for m in re.finditer(r'templatefile\("\$\{local\.iam_dir\}/([\w.-]+)"', text):
            calls += 1
            name = m.group(1)
            policy = os.path.join(IAM, name)
            if not os.path.exists(policy):
                fail(path, f"templatefile names {rel(policy)}, which does not exist")
                continue
            call = balanced(text, m.start() + len("templatefile"))
            given = set(re.findall(r"^\s*(\w+)\s*=", call, flags=re.M))
            given |= set(re.findall(r"\{\s*(\w+)\s*=", call))
            if "local.common" in call:
                given |= COMMON
            wanted = placeholders(open(policy).read())
            if wanted - given:
                fail(path, f"templatefile of {name}: does not pass {sorted(wanted - given)}, which the file uses")
    if calls == 0:
        fail(MODULE, "no templatefile() of a deploy/iam policy: the module must render the checked-in files")
    return calls


def module_blocks(kind: str) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for path in sorted(glob.glob(os.path.join(MODULE, "*.tf"))):
        with open(path) as f:
            doc = hcl2.load(f)
        for block in doc.get(kind, []):
            for name, body in block.items():
                out[name.strip('"')] = body
    return out


def docs_table(text: str, heading: str) -> dict[str, str]:
    """`name` → the rest of the row, from the table under `## heading` (or ###)."""
    m = re.search(rf"^#+ {re.escape(heading)}\s*$(.*?)(?=^#+ |\Z)", text, flags=re.M | re.S)
    if not m:
        return {}
    rows = {}
    for line in m.group(1).splitlines():
        cell = re.match(r"^\|\s*`([a-z_]+)`\s*\|(.*)\|\s*$", line)
        if cell:
            rows[cell.group(1)] = cell.group(2)
    return rows


def check_docs_agree() -> tuple[int, int]:
    if not os.path.exists(DOCS):
        fail(DOCS, "missing")
        return (0, 0)
    text = open(DOCS).read()
    variables = module_blocks("variable")
    outputs = module_blocks("output")
    documented_vars = docs_table(text, "Module inputs")
    documented_outs = docs_table(text, "Module outputs")
    for name in sorted(variables.keys() - documented_vars.keys()):
        fail(DOCS, f"the module's variable `{name}` is not in the \"Module inputs\" table")
    for name in sorted(documented_vars.keys() - variables.keys()):
        fail(DOCS, f"\"Module inputs\" lists `{name}`, which the module does not have")
    for name in sorted(outputs.keys() - documented_outs.keys()):
        fail(DOCS, f"the module's output `{name}` is not in the \"Module outputs\" table")
    for name in sorted(documented_outs.keys() - outputs.keys()):
        fail(DOCS, f"\"Module outputs\" lists `{name}`, which the module does not have")
    for name, body in variables.items():
        if name not in documented_vars:
            continue
        required_in_docs = "required" in documented_vars[name].split("|")[0]
        required_in_module = "default" not in body
        if required_in_docs != required_in_module:
            want = "required" if required_in_module else "its default"
            fail(DOCS, f"`{name}`: the module has {'no default' if required_in_module else 'a default'}; the table should say {want}")
        if not body.get("description"):
            fail(MODULE, f"variable `{name}` has no description")
    for name, body in outputs.items():
        if not body.get("description"):
            fail(MODULE, f"output `{name}` has no description")
    for path in sorted(set(re.findall(r"`((?:deploy|docs|scripts)/[\w./-]+)`", text))):
        if not os.path.exists(os.path.join(ROOT, path.rstrip("/"))):
            fail(DOCS, f"names {path}, which does not exist")
    return (len(variables), len(outputs))


def check_skips_have_reasons() -> int:
    skips = 0
    for path in sorted(glob.glob(os.path.join(DEPLOY, "terraform", "**", "*.tf"), recursive=True)):
        for n, line in enumerate(open(path), 1):
            m = re.search(r"checkov:skip=([A-Z0-9_]+)(.*)", line)
            if m:
                skips += 1
                reason = m.group(2).lstrip(":").strip()
                if len(reason) < 20:
                    fail(path, f"line {n}: checkov skip {m.group(1)} without a reason")
    return skips


def help_text(args: list[str], cache: dict) -> str:
    key = tuple(args)
    if key not in cache:
        out = subprocess.run([WEIR_BIN, *args, "--help"], capture_output=True, text=True)
        cache[key] = out.stdout if out.returncode == 0 else ""
    return cache[key]


def check_weir_flags() -> int:
    """Every `weir …` command line in the docs, the CI examples and the module's agent command
    uses flags the weir binary has (WEIR_BIN), so nothing documents a flag that does not exist."""
    if not WEIR_BIN:
        fail(ROOT, "WEIR_BIN is not set: cannot check the weir flags the docs and CI use")
        return 0
    lines: list[tuple[str, list[str]]] = []
    sources = [DOCS] + sorted(glob.glob(os.path.join(DEPLOY, "ci", "*")))
    for path in sources:
        if not os.path.exists(path):
            continue
        for line in open(path):
            for m in re.finditer(r"(?:^|[\s`(/])weir ((?:[a-z]+ ?){1,2}(?:[^`|\n;&)]*))", line):
                lines.append((path, m.group(1).split()))
    agent = open(os.path.join(MODULE, "agent.tf")).read()
    lines.append((os.path.join(MODULE, "agent.tf"), re.findall(r'"(--?[a-z-]+|agent)"', agent)))
    cache: dict = {}
    checked = 0
    for path, words in lines:
        if not words:
            continue
        # The subcommand path: leading plain words that the binary knows as commands.
        cmd: list[str] = []
        for w in words:
            if not re.fullmatch(r"[a-z]+", w) or not help_text(cmd + [w], cache):
                break
            cmd.append(w)
        if not cmd:
            continue
        text = help_text(cmd, cache)
        for flag in (w.split("=")[0] for w in words if w.startswith("--")):
            checked += 1
            if not re.search(rf"(^|[\s,]){re.escape(flag)}([\s=<\[]|$)", text, flags=re.M):
                fail(path, f"`weir {' '.join(cmd)}` has no flag {flag}")
    return checked


def main() -> int:
    tf = check_terraform_parses()
    skips = check_skips_have_reasons()
    policies = check_policies()
    calls = check_templatefile_calls()
    nvars, nouts = check_docs_agree()
    flags = check_weir_flags()
    for f in failures:
        print(f"FAIL {f}")
    print(json.dumps({
        "tf_files_parsed": tf,
        "policies_linted": policies,
        "templatefile_calls_checked": calls,
        "module_variables_documented": nvars,
        "module_outputs_documented": nouts,
        "checkov_skips_with_reasons": skips,
        "weir_flags_checked": flags,
        "failures": len(failures),
    }))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
