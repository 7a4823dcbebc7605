"""Find which field of an unparsable protobuf message is broken, so the error can name it.

protobuf's parser only says "wire format was corrupt"; callers of the API deserve the field.
This walks the wire format against the message descriptor (varints, fixed widths, length-
delimited fields, packed repeated scalars, nested and map messages, UTF-8 strings).
"""

from __future__ import annotations

from google.protobuf.descriptor import Descriptor, FieldDescriptor

_VARINT, _FIXED64, _LENGTH_DELIMITED, _START_GROUP, _END_GROUP, _FIXED32 = 0, 1, 2, 3, 4, 5
_VARINT_TYPES = {
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_SINT32,
    FieldDescriptor.TYPE_BOOL,
    FieldDescriptor.TYPE_ENUM,
}


class _Broken(Exception):
    def __init__(self, path: str) -> None:
        self.path = path


def malformed_field(data: bytes, descriptor: Descriptor) -> str:
    """Dotted path of the first broken field (``behaviors[2].item_id``), or ``"message"``."""
    try:
        _walk(memoryview(data), descriptor, prefix="")
    except _Broken as broken:
        return broken.path or "message"
    return "message"


def largest_field(data: bytes, descriptor: Descriptor) -> str:
    """Name of the top-level field holding the most bytes of ``data`` (for "too large" errors)."""
    sizes: dict[str, int] = {}
    view = memoryview(data)
    position = 0
    try:
        while position < len(view):
            start = position
            tag, position = _read_varint(view, position)
            number, wire_type = tag >> 3, tag & 7
            if wire_type == _VARINT:
                _, position = _read_varint(view, position)
            elif wire_type in (_FIXED64, _FIXED32):
                position += 8 if wire_type == _FIXED64 else 4
            elif wire_type == _LENGTH_DELIMITED:
                length, position = _read_varint(view, position)
                position += length
            else:
                break
            field = descriptor.fields_by_number.get(number)
            name = field.name if field is not None else f"field {number}"
            sizes[name] = sizes.get(name, 0) + min(position, len(view)) - start
    except ValueError:
        pass
    return max(sizes, key=lambda name: sizes[name]) if sizes else "message"


def _read_varint(data: memoryview, position: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while position < len(data) and shift < 70:
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7
    raise ValueError("truncated or overlong varint")


def _walk(data: memoryview, descriptor: Descriptor, prefix: str) -> None:
    position = 0
    counts: dict[int, int] = {}
    while position < len(data):
        try:
            tag, position = _read_varint(data, position)
        except ValueError:
            raise _Broken(prefix.rstrip(".")) from None
        number, wire_type = tag >> 3, tag & 7
        field = descriptor.fields_by_number.get(number)
        name = field.name if field is not None else f"field {number}"
        path = prefix + name
        if field is not None and field.is_repeated and field.message_type:
            path = f"{path}[{counts.get(number, 0)}]"
            counts[number] = counts.get(number, 0) + 1
        if number == 0 or wire_type in (_START_GROUP, _END_GROUP) or wire_type > _FIXED32:
            raise _Broken(path)
        try:
            if wire_type == _VARINT:
                _, position = _read_varint(data, position)
                continue
            if wire_type in (_FIXED64, _FIXED32):
                position += 8 if wire_type == _FIXED64 else 4
                if position > len(data):
                    raise ValueError("truncated fixed-width value")
                continue
            length, position = _read_varint(data, position)
            if position + length > len(data):
                raise ValueError("length runs past the end")
        except ValueError:
            raise _Broken(path) from None
        payload = data[position : position + length]
        position += length
        if field is None:
            continue
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            _walk(payload, field.message_type, prefix=f"{path}.")
        elif field.type == FieldDescriptor.TYPE_STRING:
            try:
                bytes(payload).decode("utf-8")
            except UnicodeDecodeError:
                raise _Broken(path) from None
        elif field.type in _VARINT_TYPES:
            _walk_packed_varints(payload, path)


def _walk_packed_varints(payload: memoryview, path: str) -> None:
    position = 0
    while position < len(payload):
        try:
            _, position = _read_varint(payload, position)
        except ValueError:
            raise _Broken(path) from None
