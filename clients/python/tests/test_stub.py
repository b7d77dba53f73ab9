"""The committed type stub (src/otcd_client/client.pyi) matches the endpoints: regenerate it with
``python tools/gen_client_stub.py`` after changing one."""

import ast
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_client_stub_is_current():
    spec = importlib.util.spec_from_file_location("gen_client_stub", ROOT / "tools" / "gen_client_stub.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    rendered = generator.render()
    ast.parse(rendered)
    committed = (ROOT / "src" / "otcd_client" / "client.pyi").read_text()
    assert committed == rendered, "client.pyi is stale: run python clients/python/tools/gen_client_stub.py"
    assert "    async def rfq(self, instrument: str" in rendered
    assert "    def iter_orders(self, status: Optional[str] = ..., **kw: Any) -> AsyncIterator[m.Order]: ..." in rendered
