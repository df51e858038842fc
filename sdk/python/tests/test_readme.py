"""The README's Python section works as written: its flow runs locally and deploys."""

import re

from conftest import REPO, weir_py


def test_the_readme_flow_runs(tmp_path):
    text = (REPO / "README.md").read_text()
    section = text.split("## Python flows", 1)[1]
    code = re.search(r"```python\n# flows/etl.py\n(.*?)```", section, re.S).group(1)
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "etl.py").write_text(code)
    r = weir_py("flows/etl.py", "run", "etl", "--param", "rows=10", cwd=tmp_path,
                env={"WEIR_HOME": str(tmp_path / ".weir")})
    assert r.code == 0, r
    assert r.value == sum(x * x for x in range(10))
    assert r.stderr.count("square-") == 20 and "INFO extracting 10 rows" in r.stderr
    r = weir_py("flows", "describe", cwd=tmp_path)
    assert r.code == 0 and '"rows"' in r.stdout, r
