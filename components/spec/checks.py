"""Checks of a heads spec against what it is used with: the columns of a schema or a CSV header, and a
schema's class domains."""

from __future__ import annotations

import difflib
from typing import Sequence

from components.spec.model import HeadsSpec
from components.spec.parser import SpecError


def check_columns(spec: HeadsSpec, columns: Sequence[str], source: str) -> None:
    """Checks that every feature and label column of the spec is among `columns` (a schema's or a CSV's).

    Raises:
      SpecError: naming the spec field whose column is absent from `source`.
    """
    known = sorted(set(columns))
    needed = ([(f"features[{i}].name", f.name) for i, f in enumerate(spec.features)]
              + [(f"heads[{i}].label", h.label) for i, h in enumerate(spec.heads)])
    for field, column in needed:
        if column not in known:
            close = difflib.get_close_matches(column, known, n=1)
            raise SpecError(f"{field}: column {column!r} is not in {source}"
                            + (f"; did you mean {close[0]!r}?" if close else "") + f" (columns: {known})")


def check_classes(spec: HeadsSpec, schema, source: str) -> None:
    """Checks that each class of a classification head is in its label column's string domain in `schema` (a TFDV
    Schema proto), when the schema gives it one: a class spelt unlike the data's would mask every row of its
    class, silently, and the head would never predict it.

    Raises:
      SpecError: naming the spec field, the class, the domain and the closest value of it.
    """
    domains = {d.name: list(d.value) for d in schema.string_domain}
    for i, head in enumerate(spec.heads):
        feature = next((f for f in schema.feature if f.name == head.label), None)
        if not head.is_classification or feature is None:
            continue
        domain = (list(feature.string_domain.value) if feature.HasField("string_domain")
                  else domains.get(feature.domain) if feature.HasField("domain") else None)
        for j, cls in enumerate(head.classes):
            if domain and cls not in domain:
                close = difflib.get_close_matches(cls, domain, n=1)
                raise SpecError(f"heads[{i}].classes[{j}]: class {cls!r} is not in the domain of column "
                                f"{head.label!r} in {source} {domain}" + (f"; did you mean {close[0]!r}?" if close
                                                                          else ""))
