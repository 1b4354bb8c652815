"""The base of every wire type: lenient, so a newer server never breaks an older SDK.

Unknown fields are kept (as attributes and in `model_dump()`), and fields the server leaves
out are None or empty rather than a validation error.
"""

from __future__ import annotations

from pydantic import BaseModel as _PydanticModel
from pydantic import ConfigDict


class BaseModel(_PydanticModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, protected_namespaces=())

    def to_dict(self) -> dict:
        """The JSON-compatible dict, without the fields the server did not send."""
        return self.model_dump(mode="json", exclude_unset=True)
