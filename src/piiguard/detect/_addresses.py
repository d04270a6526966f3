"""Chinese postal addresses in text: administrative divisions, then the grammar of what
follows them (roads and numbers, estates, buildings, units, rooms).

An address starts at a division from the shipped table (``validate/cn_divisions.tsv``:
provinces, prefectures, counties, full or short names) or, without one, at a road with a
number or an estate with a building (文三路398号, 谢花园小区16栋). It runs on through the units
of an address and stops at anything else. A division alone (杭州市, 北京朝阳区) names a
place, not a person's address, and is not reported.
"""

from __future__ import annotations

import bisect
import re

from piiguard.validate.cn_lexicon import divisions

__all__ = ["find_addresses"]

_HAN = "\u4e00-\u9fff"
#: Where a division name can end: the character after it is looked up, longest name first.
_DIVISION_END = re.compile(r"[省市区县旗州盟]")

_ROAD = r"(?:大街|大道|胡同|路|街|巷|弄|道)"
_PLACE = (
    r"(?:小区|社区|花园|公寓|大厦|广场|中心|家园|新村|新城|商城|市场|工业园|产业园|开发区|"
    r"科技园|园区|街道|村|镇|乡|苑|庭|府|城|湾|园|里|坊|院|期|组|段)"
)
_NUMBERED = r"(?:号楼|号院|号|栋|幢|座|单元|室|楼|层|弄|巷|组|期|户|铺|区|街|路|排)"
_UNIT = (
    rf"(?:[0-9]+(?:-[0-9]+)*{_NUMBERED}"
    rf"|[A-Za-z][0-9]*(?:座|栋|幢|区|单元|塔|楼)"
    rf"|[一二三四五六七八九十]+(?:期|区|组|号楼|栋|单元|楼)"
    rf"|[{_HAN}A-Za-z]{{0,10}}?(?:{_ROAD}|{_PLACE}))"
)
#: The units after a division, then maybe a bare room number (…12号楼1702).
_TAIL = re.compile(rf"(?:{_UNIT})+(?:[1-9][0-9]{{0,4}}(?![0-9]))?")
#: An address with no division before it: a road and its number, or an estate and a building.
_BARE = re.compile(rf"{_ROAD}[0-9]+号|(?:小区|花园|家园|新村)[0-9]+(?:栋|幢|号楼)")
_BARE_NAME = 12
#: What may stand before a bare address's name and is not part of it (送到, 地址, 在).
_LEAD = re.compile(r".*(?:地址|住址|寄到|送到|送至|寄往|发到|改成|改为|放在|住在|[在到至往是于的])")


def _is_han(char: str) -> bool:
    return "\u4e00" <= char <= "\u9fff"


def find_addresses(text: str) -> list[tuple[int, int, float]]:
    """(start, end, score) of each Chinese address found in ``text``."""
    table = divisions()
    found: list[tuple[int, int, float]] = []
    position = 0
    for match in _DIVISION_END.finditer(text):
        end = match.end()
        if end <= position:
            continue
        start = table.name_ending_at(text, end)
        if start is None or start < position:
            continue
        # widen to the left over a province or city written before it (浙江杭州市)
        while (before := table.name_ending_at(text, start)) is not None and before >= position:
            start = before
        divisions_end = table.prefix_end(text, start)
        if divisions_end < end:  # what ends here is no division in order (a road's 中山)
            position = end
            continue
        tail = _TAIL.match(text, divisions_end)
        if tail is None:
            position = divisions_end
            continue
        found.append((start, tail.end(), 0.9))
        position = tail.end()
    covered = 0  # the end of the last bare address: what lies before it is no new one
    for match in _BARE.finditer(text):
        # the estate's or road's own name: the characters before it, less what leads to it
        start = match.start()
        if start < covered:
            continue
        while start > max(0, match.start() - _BARE_NAME) and _is_han(text[start - 1]):
            start -= 1
        name = text[start : match.start()]
        if not name:
            continue
        lead = _LEAD.match(name)
        if lead is not None:
            if lead.end() == len(name):
                continue
            start += lead.end()
        at = bisect.bisect_right(found, (start, len(text) + 1, 1.0))
        if at and found[at - 1][1] > start:
            continue  # inside an address that starts at a division
        tail = _TAIL.match(text, start)
        if tail is None:
            continue
        covered = tail.end()
        if at == len(found) or found[at][0] >= covered:
            found.insert(at, (start, covered, 0.8))
    return found
