"""Schemathesis hooks of Weir's API fuzz test (crates/weir-cli/tests/e2e_fuzz_api.rs).

They keep the fuzzer able to reach the API for its whole run; they change no check:

- It may revoke any API key it finds (it lists them and follows the links to
  `POST /api/v1/keys/{id}/revoke`), except the one it authenticates with: revoking that one
  would turn every later request into a 401 and end the test's reach, not find a bug.
- Claims long-poll for up to `wait_ms` (at most 30000) when no run is due. A valid `wait_ms`
  is shortened to 100 ms so hundreds of claims fit the time budget (the long-poll itself is
  tested in crates/weir-server/tests/api.rs); an invalid one (above 30000) is sent as is, so
  its rejection is still checked.
"""

import os

import schemathesis

OWN_KEY_ID = os.environ["WEIR_FUZZ_KEY_ID"]
SHORT_WAIT_MS = 100


@schemathesis.hook("filter_path_parameters")
def keep_own_key(ctx, path_parameters):
    return not path_parameters or path_parameters.get("id") != OWN_KEY_ID


@schemathesis.hook
def before_call(ctx, case, kwargs):
    path = case.operation.path
    if path.endswith("/keys/{id}/revoke") and (case.path_parameters or {}).get("id") == OWN_KEY_ID:
        # Reached through a link: aim at a key that does not exist instead.
        case.path_parameters["id"] = "000000000000"
    if path.endswith("/agents/{id}/claim") and isinstance(case.body, dict):
        wait = case.body.get("wait_ms")
        if isinstance(wait, (int, float)) and not isinstance(wait, bool) and 0 <= wait <= 30000:
            case.body["wait_ms"] = min(int(wait), SHORT_WAIT_MS)
