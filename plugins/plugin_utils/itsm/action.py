# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base of the ITSM action plugins: one option spec, one way to open a backend."""

from __future__ import annotations

import contextlib
import os
from typing import Any, Dict, Iterator, Mapping, Optional

from ansible_collections.relops.release.plugins.plugin_utils.action_base import RelopsActionBase
from ansible_collections.relops.release.plugins.plugin_utils.ledger import Ledger
from ansible_collections.relops.release.plugins.plugin_utils.ledger.options import LEDGER_ARGUMENT_SPEC

from .backend import ItsmBackend, Record, as_text
from .errors import ITSMError
from .instance import INSTANCE_ARGUMENT_SPEC, resolve_backend, resolve_instance
from .local import LocalBackend

ITSM_ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {**INSTANCE_ARGUMENT_SPEC, **LEDGER_ARGUMENT_SPEC}


class ItsmActionBase(RelopsActionBase):
    """An action that reads or writes changes and CIs on the configured backend."""

    requests_sent = 0

    @contextlib.contextmanager
    def itsm_backend(self, args: Mapping[str, Any], write: bool) -> Iterator[ItsmBackend]:
        """Open the backend the task selects: ``local`` on the ledger, or a ServiceNow instance."""
        chosen = resolve_backend(args.get("backend"), args.get("instance"), os.environ)
        if chosen == "servicenow":
            # Imported here: the client pulls in requests (and urllib3, ssl), which local-backend tasks never use
            # and which would cost every gate run a tenth of a second.
            from .servicenow import ServiceNowClient  # noqa: PLC0415
            from .servicenow_backend import ServiceNowBackend  # noqa: PLC0415

            client = ServiceNowClient(resolve_instance(args.get("instance"), os.environ))
            try:
                yield ServiceNowBackend(client)
            finally:
                self.requests_sent = client.requests_sent
                client.session.close()
            return
        ledger: Optional[Ledger] = (
            self.open_task_ledger(dict(args))
            if write and not self.check_mode
            else self.open_task_ledger_readonly(dict(args))
        )
        try:
            yield LocalBackend(ledger, self.actor)
        finally:
            if ledger is not None:
                ledger.close()


def public_change(change: Record) -> Record:
    """A change as modules return it: no backend-private keys."""
    return {key: value for key, value in change.items() if not key.startswith("_")}


def require_positive(name: str, value: Any) -> None:
    if value is not None and value < 1:
        raise ITSMError("%s %r must be at least 1" % (name, value))


def text_fields(values: Mapping[str, Any]) -> Dict[str, str]:
    return {key: as_text(value) for key, value in values.items() if value is not None}
