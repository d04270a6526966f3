"""Chinese-specific knowledge for masking: compound surnames and administrative divisions."""

from __future__ import annotations

import re

__all__ = ["ADMIN_PREFIX", "COMPOUND_SURNAMES", "is_cjk"]

#: Two-character surnames, kept whole when a name has at least three characters.
COMPOUND_SURNAMES = frozenset(
    "欧阳 司马 诸葛 上官 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 夏侯 轩辕 令狐 独孤 "
    "南宫 西门 端木 百里 呼延 钟离 澹台 太史 申屠 赫连 万俟 闻人 司空 濮阳 淳于 单于 "
    "公羊 公冶 宗政 东郭 拓跋 完颜 第五 鲜于 闾丘 子车 亓官 司寇 巫马 公西 颛孙 壤驷 "
    "公良 漆雕 乐正 宰父 谷梁 夹谷 梁丘 左丘 东门 羊舌 微生 太叔 仲孙 仉督 段干 南门 "
    "归海 公户 公玉 公仪 梁余 公乘 哥舒 ".split()
)


def is_cjk(char: str) -> bool:
    """Return whether a character is a CJK unified ideograph (basic block or extension A)."""
    return "\u4e00" <= char <= "\u9fff" or "\u3400" <= char <= "\u4dbf"


_PROVINCES = (
    "河北|山西|辽宁|吉林|黑龙江|江苏|浙江|安徽|福建|江西|山东|河南|湖北|湖南|广东|海南|四川|"
    "贵州|云南|陕西|甘肃|青海|台湾"
)
_REGIONS = (
    "内蒙古(?:自治区)?|广西(?:壮族自治区)?|西藏(?:自治区)?|宁夏(?:回族自治区)?|"
    "新疆(?:维吾尔自治区)?"
)
_MUNICIPALITIES = "(?:北京|天津|上海|重庆)市?"
_SARS = "(?:香港|澳门)(?:特别行政区)?"
# A division's own name: CJK characters that are not the suffix of a lower level of address,
# nor part of a community's, estate's, market's or building's name (谢花园小区 is no district,
# 万达广场市场 no county-level city): what follows a district is never kept.
_PLACE = "小区|社区|花园|广场|市场|商场|商城|大厦|公寓|家园|新村"
_PLACE += "|[市区县旗路街道号巷弄村镇乡楼栋室苑]"
_NAME = rf"(?:(?!{_PLACE})[\u4e00-\u9fff]){{1,10}}?"
_CITY = rf"\s*{_NAME}(?:市(?![场政民])|地区|自治州|盟)"
_DISTRICT = rf"\s*{_NAME}(?:区|县|旗|市(?![场政民]))"

#: Province, then (outside the municipalities) city, then district, county or banner: the
#: part of a Chinese address that the default rule keeps.
ADMIN_PREFIX = re.compile(
    rf"(?:{_MUNICIPALITIES}(?:{_DISTRICT})?"
    rf"|(?:(?:{_PROVINCES})省?|{_REGIONS}|{_SARS})(?:{_CITY})?(?:{_DISTRICT})?)"
)
