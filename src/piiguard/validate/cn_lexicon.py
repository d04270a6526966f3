"""What Chinese names and addresses are made of: surnames and administrative divisions.

Shared by masking (which keeps a compound surname and at most a district) and detection
(which finds names and addresses in text). The division table ships in the package
(``cn_divisions.tsv``: its source and date are in its header) and is read on first use.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources

__all__ = ["COMPOUND_SURNAMES", "SURNAMES", "Divisions", "divisions", "surname_words"]

#: Two-character surnames, kept whole when a name has at least three characters.
COMPOUND_SURNAMES = frozenset(
    "欧阳 司马 诸葛 上官 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 夏侯 轩辕 令狐 独孤 "
    "南宫 西门 端木 百里 呼延 钟离 澹台 太史 申屠 赫连 万俟 闻人 司空 濮阳 淳于 单于 "
    "公羊 公冶 宗政 东郭 拓跋 完颜 第五 鲜于 闾丘 子车 亓官 司寇 巫马 公西 颛孙 壤驷 "
    "公良 漆雕 乐正 宰父 谷梁 夹谷 梁丘 左丘 东门 羊舌 微生 太叔 仲孙 仉督 段干 南门 "
    "归海 公户 公玉 公仪 梁余 公乘 哥舒 ".split()
)

#: One-character surnames: the Hundred Family Surnames and the common surnames of today's
#: population registers (about 99% of people).
SURNAMES = frozenset(
    "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨朱秦尤许何吕施张孔曹严华金魏陶姜戚谢邹喻柏水窦章云苏潘葛"
    "奚范彭郎鲁韦昌马苗凤花方俞任袁柳酆鲍史唐费廉岑薛雷贺倪汤滕殷罗毕郝邬安常乐于时傅皮卞齐康"
    "伍余元卜顾孟平黄和穆萧尹姚邵湛汪祁毛禹狄米贝明臧计伏成戴谈宋茅庞熊纪舒屈项祝董梁杜阮蓝闵"
    "席季麻强贾路娄危江童颜郭梅盛林刁钟徐邱骆高夏蔡田樊胡凌霍虞万支柯昝管卢莫经房裘缪干解应宗"
    "丁宣贲邓郁单杭洪包诸左石崔吉钮龚程嵇邢滑裴陆荣翁荀羊於惠甄曲家封芮羿储靳汲邴糜松井段富巫"
    "乌焦巴弓牧隗山谷车侯宓蓬全郗班仰秋仲伊宫宁仇栾暴甘钭厉戎祖武符刘景詹束龙叶幸司韶郜黎蓟薄"
    "印宿白怀蒲邰从鄂索咸籍赖卓蔺屠蒙池乔阴郁胥能苍双闻莘党翟谭贡劳逄姬申扶堵冉宰郦雍却璩桑桂"
    "濮牛寿通边扈燕冀郏浦尚农温别庄晏柴瞿阎充慕连茹习宦艾鱼容向古易慎戈廖庾终暨居衡步都耿满弘"
    "匡国文寇广禄阙东欧殳沃利蔚越夔隆师巩厍聂晁勾敖融冷訾辛阚那简饶空曾毋沙乜养鞠须丰巢关蒯相"
    "查后荆红游竺权逯盖益桓公覃闫付肖谌揭栗练郑佘岳帅缑亢况琴牟佴墨谯笪佟舒丛芦兰冼隋仝迟粟矫麦"
    "腾续朴展邸邝晋战苑郄衣"
)


@dataclass(frozen=True)
class Divisions:
    """The administrative divisions by level, full names and the short names people write."""

    provinces: frozenset[str]
    prefectures: frozenset[str]
    counties: frozenset[str]
    short: frozenset[str]
    short_provinces: frozenset[str]
    short_prefectures: frozenset[str]
    #: Every name of every level, and the lengths of the names that end in each character.
    names: frozenset[str] = field(init=False)
    _lengths: Mapping[str, tuple[int, ...]] = field(init=False, repr=False)
    _levels: tuple[_Level, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        names = self.provinces | self.prefectures | self.counties | self.short
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "_lengths", _lengths_by(names, -1))
        levels = (
            (self.provinces, self.short_provinces),
            (self.prefectures, self.short_prefectures),
            (self.counties, frozenset[str]()),
        )
        object.__setattr__(
            self,
            "_levels",
            tuple((full, short, _lengths_by(full | short, 0)) for full, short in levels),
        )

    def name_ending_at(self, text: str, end: int) -> int | None:
        """Where the longest division name that ends at ``text[end - 1]`` starts, or None."""
        if end <= 0:
            return None
        names = self.names
        for size in self._lengths.get(text[end - 1], ()):
            if size <= end and text[end - size : end] in names:
                return end - size
        return None

    def prefix_end(self, text: str, start: int = 0) -> int:
        """Where the divisions written at ``text[start:]`` end: a province, then a prefecture,
        then a county, each at most once and in that order, each optional (浙江省杭州市西湖区,
        杭州西湖区, 北京市朝阳区). ``start`` when none is.

        The one reading of "the part of an address that names its district", used by the
        address mask (which keeps it) and by detection (which starts an address there).
        """
        return _reach(text, start, self._levels)

    def is_division(self, name: str) -> bool:
        """Whether ``name`` is the full or short name of a province, prefecture or county."""
        return name in self.names


#: A province's or prefecture's name without its suffix: 浙江 of 浙江省, 甘南 of 甘南藏族自治州.
#: One level of divisions: its full names, its short names, and the lengths of its names by
#: first character.
_Level = tuple[frozenset[str], frozenset[str], Mapping[str, tuple[int, ...]]]


def _lengths_by(names: frozenset[str], index: int) -> Mapping[str, tuple[int, ...]]:
    """The lengths of ``names``, longest first, by their character at ``index``."""
    lengths: dict[str, set[int]] = {}
    for name in names:
        lengths.setdefault(name[index], set()).add(len(name))
    return {char: tuple(sorted(sizes, reverse=True)) for char, sizes in lengths.items()}


def _reach(text: str, start: int, levels: tuple[_Level, ...]) -> int:
    """The furthest end of divisions written from ``start``, one level after another, each
    level optional (朝阳 is a prefecture's short name, but 北京市朝阳区 is Beijing's district)."""
    if not levels:
        return start
    at = start
    while at < len(text) and text[at] == " ":
        at += 1
    best = _reach(text, start, levels[1:])
    if at == len(text):
        return best
    full, short, lengths = levels[0]
    for size in lengths.get(text[at], ()):
        piece = text[at : at + size]
        if at + size > len(text):
            continue
        if piece in full:
            best = max(best, _reach(text, at + size, levels[1:]))
        elif piece in short:
            # a short name (杭州, 中山) is a division only before a lower one (杭州西湖区):
            # alone it is as likely a road's or an estate's (中山路, 金华小区)
            after = _reach(text, at + size, levels[1:])
            if after > at + size:
                best = max(best, after)
    return best


_SHORT = re.compile(
    r"([\u4e00-\u9fff]{2,}?)"
    r"(?:(?:维吾尔|[\u4e00-\u9fff]{1,4}?族)*自治(?:区|州|县|旗)|特别行政区|省|市|地区|盟)"
)
#: County-level names too common as words to start an address on their own.
_GENERIC = frozenset({"城区", "矿区", "郊区", "新区", "市区", "东区", "西区", "南区", "北区"})


@functools.cache
def divisions() -> Divisions:
    """The division table, read once from the package."""
    provinces: set[str] = set()
    prefectures: set[str] = set()
    counties: set[str] = set()
    source = resources.files("piiguard.validate").joinpath("cn_divisions.tsv")
    for line in source.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        code, name = line.split("\t")
        if name in _GENERIC:
            continue
        if code.endswith("0000"):
            provinces.add(name)
        elif code.endswith("00"):
            prefectures.add(name)
        else:
            counties.add(name)
    short_provinces, short_prefectures = _short_names(provinces), _short_names(prefectures)
    return Divisions(
        frozenset(provinces),
        frozenset(prefectures),
        frozenset(counties),
        short_provinces | short_prefectures,
        short_provinces,
        short_prefectures,
    )


def _short_names(names: set[str]) -> frozenset[str]:
    return frozenset(
        match.group(1) for name in names if (match := _SHORT.fullmatch(name)) is not None
    )


@functools.cache
def surname_words() -> frozenset[str]:
    """Everyday two-character words that begin with a surname character (方便, 时间, 金额),
    read once from the package (``cn_surname_words.txt``: derived from jieba's dictionary,
    its source and licence in its header)."""
    source = resources.files("piiguard.validate").joinpath("cn_surname_words.txt")
    return frozenset(
        word
        for line in source.read_text(encoding="utf-8").splitlines()
        if not line.startswith("#")
        for word in line.split()
    )
