"""How events are compressed for the table: zlib with a preset dictionary.

A dictionary primes the compressor with text it will likely meet, so even one short message
compresses well: here, the parts every Segment message shares whatever the site (field
names, the libraries' names, common user agents, the e-commerce spec's event and property
names; nothing of any one site). On bench/shop.py's traffic it takes a lone analytics.js
event from 673 to 388 bytes stored and a browser batch's item from 1,051 to 711 (0.24 to
0.15 write units per event). zlib's preset dictionaries: RFC 1950 section 2.2 (FDICT).

The dictionary can never change: items written with it are read with it for as long as they
live. A better one would be a second version under another attribute name.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

__all__ = [
    "decisions_held",
    "fire_record",
    "pack",
    "pack_with_dictionary",
    "unpack",
    "unpack_with_dictionary",
]

# A decision item holding a person's decisions saved together: their fields, packed.
DECISIONS_PACKED = "zdec"

# A fire item's record: packed (with the dictionary: it carries its entry event), or, for
# items written before, JSON text.
FIRE_PACKED = "zf"
FIRE_TEXT = "fire"

_LEVEL = 6
# Later fragments sit closer to the data, which zlib encodes more cheaply: the most common last.
_FRAGMENTS_V1 = (
    '{"library":{"name":"analytics-python","version":"2.3.',
    '"os":{"name":"iOS","version":"',
    '"userAgent":"Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15'
    ' (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1"',
    '"userAgent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36'
    ' (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"',
    '"userAgentData":{"brands":[{"brand":"Chromium","version":"131"}],"mobile":false,'
    '"platform":"Windows"}',
    '"campaign":{"name":"","source":"newsletter","medium":"email","term":"","content":""}',
    '"integrations":{},"originalTimestamp":"',
    '"traits":{"email":"","first_name":"","last_name":"","plan":"","timezone":""}',
    '"event":"Order Completed","properties":{"order_id":"","total":,"revenue":,"currency":"USD",'
    '"products":[{"product_id":"","sku":"","name":"","price":,"quantity":1,"category":""}]}',
    '"event":"Checkout Started","properties":{"cart_id":"","value":,"currency":"EUR"',
    '"event":"Product Added","properties":{"cart_id":"","product_id":"","sku":"","name":"",'
    '"price":,"quantity":1,"category":"","currency":"USD"',
    '"event":"Product Viewed","properties":{"product_id":"","sku":"","name":"","price":,'
    '"category":"","currency":"EUR","url":"https://","image_url":"https://"}',
    '"event":"Page Engaged","properties":{"active_seconds":,"scroll_depth":,',
    '"type":"identify","traits":{"email":"',
    '"type":"page","properties":{"path":"/","url":"https://","title":"","referrer":"","search":""}',
    '"context":{"library":{"name":"analytics.js","version":"next-1.7',
    '"page":{"path":"/","url":"https://www.","title":"","referrer":"https://www.google.com/",'
    '"search":""}',
    '"userAgent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36'
    ' (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"',
    '"locale":"en-US","timezone":"America/New_York","screen":{"width":1512,"height":982,'
    '"density":2}}',
    '{"anonymousId":"","messageId":"ajs-next-","timestamp":"2026-","sentAt":"2026-",'
    '"receivedAt":"2026-","userId":"","type":"track"',
)
DICTIONARY_V1 = "".join(_FRAGMENTS_V1).encode()


def pack_with_dictionary(value: Any) -> bytes:
    """A JSON value, compact, compressed with the dictionary."""
    packer = zlib.compressobj(_LEVEL, zdict=DICTIONARY_V1)
    return packer.compress(_compact(value)) + packer.flush()


def unpack_with_dictionary(data: bytes) -> Any:
    unpacker = zlib.decompressobj(zdict=DICTIONARY_V1)
    return json.loads(unpacker.decompress(data) + unpacker.flush())


def pack(value: Any) -> bytes:
    """A JSON value, compact, compressed without a dictionary (profiles: little of them is
    Segment's shared text)."""
    return zlib.compress(_compact(value), _LEVEL)


def unpack(data: bytes) -> Any:
    """A value compressed without a dictionary (event items written before it, profiles)."""
    return json.loads(zlib.decompress(data))


def fire_record(item: Any) -> Any:
    """The fire record a fire item holds (a plain item, as ``from_attributes`` gives)."""
    if FIRE_PACKED in item:
        return unpack_with_dictionary(bytes(item[FIRE_PACKED]))
    return json.loads(item[FIRE_TEXT])


def decisions_held(item: Any) -> list[Any]:
    """The decisions a decision item holds (a plain item): several packed, or its own."""
    if DECISIONS_PACKED in item:
        held: list[Any] = unpack_with_dictionary(bytes(item[DECISIONS_PACKED]))
        return held
    return [item]


def _compact(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
