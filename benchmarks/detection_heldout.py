"""An independent labelled corpus: written by a team member who had not seen the detector's rules
or benchmarks/detection_corpus.py, to measure pg.scan on text it was not tuned on.

    samples = corpus(count, seed=1)   # the same samples for the same count and seed

Every value is synthetic (random digits / names / addresses assembled from parts).
Label kinds: phone, email, cn_resident_id, bank_card, ipv4, ipv6, cn_passport,
cn_license_plate, person_name, address.
`negatives` lists hard negatives (form, start, end) that a detector should NOT flag.
Only the Python standard library is used.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Label", "Sample", "corpus"]

# (pre, value, post, form): only `value` is labelled; pre/post are written around it
_Gen = tuple[str, str, str, str]


@dataclass(frozen=True)
class Label:
    """One labelled value: its kind, its span in the text, and how it was written."""

    kind: str
    start: int
    end: int
    form: str  # how the value was written


@dataclass(frozen=True)
class Sample:
    """A text, the values planted in it, and the hard negatives it holds."""

    text: str
    labels: tuple[Label, ...]
    negatives: tuple[tuple[str, int, int], ...]  # (form, start, end)


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------


def _fw(s: str) -> str:
    """ASCII -> full-width (digits, letters, + - ( ) etc.)."""
    out: list[str] = []
    for c in s:
        o = ord(c)
        if 0x21 <= o <= 0x7E:
            out.append(chr(o + 0xFEE0))
        else:
            out.append(c)
    return "".join(out)


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def luhn_check_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:  # these get doubled once the check digit is appended
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_ok(num: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(num)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


_ID_W = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def id_check_char(body17: str) -> str:
    s = sum(int(c) * w for c, w in zip(body17, _ID_W, strict=True))
    return "10X98765432"[s % 11]


def ean13_check(body12: str) -> str:
    s = sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(body12))
    return str((10 - s % 10) % 10)


# ----------------------------------------------------------------------------
# vocabularies (all synthetic combinations)
# ----------------------------------------------------------------------------

SURNAMES_1 = list(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史黎贺顾毛郝龚"
    "邵万钱覃武戴孔汤庞樊兰殷施陶洪翟安颜倪严牛温芦季俞章鲁葛伍申尤毕聂柴焦向柳邢岳齐梅莫庄辛"
    "管祝左涂谷时舒耿卜詹关苗凌费纪靳盛童欧甄项曲成游阳裴席卫查屈鲍位覃霍翁隋甘景薄单包司柏宁"
    "柯阮桂闵解强丛"
)
SURNAMES_2 = "欧阳 司马 诸葛 上官 东方 慕容 皇甫 令狐 夏侯 尉迟 公孙 长孙 宇文 司徒".split()
GIVEN = list(
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉建国志文斌宇浩凯婷雪琳晨欣怡"
    "子轩梓涵一诺雨桐思远嘉豪俊熙博文若曦佳琪雅婧晓东海燕春梅丹阳立新永健家乐天佑紫萱梦瑶语嫣"
    "逸飞泽宇浩然铭心悦诗雨婉清亦凡宏伟少华振国德胜金凤小龙"
)
TITLES_M = ["先生", "总", "经理", "师傅", "老师", "哥"]
TITLES_F = ["女士", "小姐", "姐", "老师", "阿姨", "经理"]

MOBILE_PREFIXES = (
    [f"13{i}" for i in range(10)]
    + ["145", "147", "149"]
    + ["150", "151", "152", "153", "155", "156", "157", "158", "159"]
    + ["162", "165", "166", "167"]
    + ["170", "171", "172", "173", "175", "176", "177", "178"]
    + [f"18{i}" for i in range(10)]
    + ["190", "191", "192", "193", "195", "196", "197", "198", "199"]
)
AREA3 = ["010", "020", "021", "022", "023", "024", "025", "027", "028", "029"]
AREA4 = (
    "0755 0571 0512 0731 0591 0871 0531 0532 0371 0451 0431 0898 0769 0757 0574 0577 0760 0351 "
    "0551 0791"
).split()

# real county-level division codes (public administrative codes)
REGION_CODES = (
    "110101 110105 110108 110106 310101 310104 310115 310112 440103 440106 440304 440305 "
    "440306 330102 330106 330110 320102 320106 320505 510104 510107 420102 420106 610113 "
    "500103 120101 370102 370202 410105 430104 350102 350203 210102 230103 220102 130102 "
    "140105 340104 360102 450103 530102 520102 620102 650102 460106 150102 640104 441302 "
    "431122 411625 511324 360731 341221 371323 450923"
).split()

UNIONPAY_BINS = (
    "622202 622848 621700 622588 621661 623058 622262 621226 622700 622609 621483 625965 "
    "622908 621799"
).split()

PROVINCE_CHARS = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"

CITY_TABLE = [
    ("北京市", "", ["朝阳区", "海淀区", "东城区", "西城区", "丰台区", "昌平区"]),
    ("上海市", "", ["浦东新区", "徐汇区", "静安区", "闵行区", "杨浦区"]),
    ("天津市", "", ["和平区", "南开区", "河西区"]),
    ("重庆市", "", ["渝中区", "江北区", "南岸区"]),
    ("广东省", "广州市", ["天河区", "越秀区", "海珠区", "白云区"]),
    ("广东省", "深圳市", ["南山区", "福田区", "宝安区", "龙岗区"]),
    ("浙江省", "杭州市", ["西湖区", "上城区", "拱墅区", "余杭区"]),
    ("江苏省", "南京市", ["鼓楼区", "玄武区", "建邺区"]),
    ("江苏省", "苏州市", ["姑苏区", "吴中区", "相城区"]),
    ("四川省", "成都市", ["武侯区", "锦江区", "成华区"]),
    ("湖北省", "武汉市", ["洪山区", "武昌区", "江汉区"]),
    ("陕西省", "西安市", ["雁塔区", "碑林区", "未央区"]),
    ("山东省", "青岛市", ["市南区", "崂山区", "李沧区"]),
    ("福建省", "厦门市", ["思明区", "湖里区"]),
    ("湖南省", "长沙市", ["岳麓区", "天心区", "开福区"]),
    ("河南省", "郑州市", ["金水区", "二七区", "中原区"]),
]
ROADS = (
    "中山路 人民路 建设路 解放大道 科技园南路 文三路 长江路 淮海中路 天府大道 珞喻路 丰潭路 "
    "学院路 新华街 滨江大道 朝阳北路 环城西路 延安东路 黄河路 光明街 和平里东街 东风路 工农路 "
    "育才路 胜利街"
).split()
ESTATES = (
    "阳光花园 翠苑 金色家园 幸福里 锦绣江南 绿地世纪城 万科城市花园 保利香槟国际 龙湖春江郦城 "
    "和谐家园 紫荆苑 碧水湾 怡景 丽都 新城国际 康乐 书香门第 华府名城"
).split()
RURAL_TABLE = [
    ("湖南省邵阳市", "隆回县", ["桃洪镇", "六都寨镇", "滩头镇"]),
    ("河南省周口市", "郸城县", ["宁平镇", "汲冢镇", "石槽镇"]),
    ("四川省南充市", "仪陇县", ["新政镇", "金城镇", "马鞍镇"]),
    ("江西省赣州市", "于都县", ["贡江镇", "罗坳镇", "银坑镇"]),
    ("安徽省阜阳市", "临泉县", ["城关镇", "杨桥镇", "吕寨镇"]),
    ("山东省临沂市", "沂水县", ["许家湖镇", "高桥镇", "院东头镇"]),
    ("广西壮族自治区玉林市", "博白县", ["博白镇", "东平镇", "沙河镇"]),
    ("河北省保定市", "涞源县", ["涞源镇", "银坊镇"]),
]
VILLAGES = (
    "李家村 王庄村 新华村 红星村 石桥村 大湾村 柳树村 前进村 刘湾村 东岭村 长岗村 黄泥塘村"
).split()
CN_NUM = "一二三四五六七八九十"

PRODUCTS = (
    "蓝牙耳机 空气炸锅 羽绒服 扫地机器人 保温杯 婴儿奶粉 运动鞋 机械键盘 面霜 电动牙刷 四件套 "
    "猫粮 儿童书包 行李箱 投影仪"
).split()
SHOPS = ["优品", "星辰数码", "暖暖家居", "小熊母婴", "极速运动", "云上美妆"]
BANKS = [
    "中国工商银行杭州西湖支行",
    "中国建设银行深圳南山支行",
    "招商银行北京分行",
    "中国农业银行成都武侯支行",
    "中国银行上海徐汇支行",
    "交通银行南京鼓楼支行",
]
COMPANIES = [
    "杭州云帆网络科技有限公司",
    "深圳市启明电子有限公司",
    "北京青禾文化传媒有限公司",
    "成都蓉锦贸易有限公司",
    "苏州科瑞智能设备有限公司",
]
EMAIL_DOMAINS = (
    "qq.com 163.com 126.com sina.com sohu.com foxmail.com gmail.com outlook.com hotmail.com "
    "yeah.net aliyun.com"
).split()
CORP_DOMAINS = ["yunfan-tech.cn", "qiming-elec.com.cn", "qinghe.media", "rongjin-trade.com"]
PINYIN = (
    "zhang wang li liu chen yang huang zhao zhou wu xu sun ma zhu hu guo lin he gao luo ouyang "
    "zhuge"
).split()
PINYIN_GIVEN = (
    "wei fang na min jing lei yang jie tao ming xiaoyu haoran zixuan yiran jiahao shiyu chen xin"
).split()

# words that begin with a surname character but are not names
SURNAME_WORDS = (
    "高兴 马上 方便 周末 黄色 白色 许多 金额 程序 万一 于是 常用 江南 石头 安全"
).split()


# ----------------------------------------------------------------------------
# value generators: each returns (pre, value, post, form); only `value` is labelled
# ----------------------------------------------------------------------------


def _pick_form(rng: random.Random, table: list[tuple[str, int]]) -> str:
    r = rng.random() * sum(w for _, w in table)
    for f, w in table:
        r -= w
        if r <= 0:
            return f
    return table[-1][0]


def _mobile_digits(rng: random.Random) -> str:
    while True:
        n = rng.choice(MOBILE_PREFIXES) + _digits(rng, 8)
        if n != "13800138000":
            return n


def gen_mobile(rng: random.Random, form: str | None = None) -> _Gen:
    n = _mobile_digits(rng)
    form = form or _pick_form(
        rng,
        [
            ("plain", 40),
            ("space_3_4_4", 10),
            ("dash_3_4_4", 10),
            ("plus86", 8),
            ("plus86_space", 8),
            ("0086", 6),
            ("fullwidth", 8),
            ("plus86_dash_3_4_4", 4),
        ],
    )
    if form == "plain":
        v = n
    elif form == "space_3_4_4":
        v = f"{n[:3]} {n[3:7]} {n[7:]}"
    elif form == "dash_3_4_4":
        v = f"{n[:3]}-{n[3:7]}-{n[7:]}"
    elif form == "plus86":
        v = "+86" + n
    elif form == "plus86_space":
        v = "+86 " + n
    elif form == "0086":
        v = "0086" + n
    elif form == "fullwidth":
        v = _fw(n)
    elif form == "plus86_dash_3_4_4":
        v = f"+86 {n[:3]}-{n[3:7]}-{n[7:]}"
    else:
        raise ValueError(form)
    return "", v, "", "mobile_" + form


def gen_landline(rng: random.Random, form: str | None = None) -> _Gen:
    if rng.random() < 0.4:
        area = rng.choice(AREA3)
        sub = rng.choice("2345678") + _digits(rng, 7)
    else:
        area = rng.choice(AREA4)
        sub = rng.choice("2345678") + _digits(rng, rng.choice([6, 7, 7]))
    form = form or _pick_form(
        rng, [("dash", 45), ("paren", 15), ("paren_fullwidth", 10), ("space", 20), ("plain", 10)]
    )
    if form == "dash":
        v = f"{area}-{sub}"
    elif form == "paren":
        v = f"({area}){sub}"
    elif form == "paren_fullwidth":
        v = f"（{area}）{sub}"
    elif form == "space":
        v = f"{area} {sub}"
    elif form == "plain":
        v = area + sub
    else:
        raise ValueError(form)
    post = ""
    if rng.random() < 0.22:
        post = rng.choice(["转", "转", "-", " ext.", "分机"]) + _digits(rng, rng.choice([3, 4]))
        form = form + "_ext"
    return "", v, post, "landline_" + form


def gen_phone(rng: random.Random, variant: str | None = None) -> _Gen:
    if variant == "landline":
        return gen_landline(rng)
    if variant == "mobile":
        return gen_mobile(rng)
    if variant == "mobile_plain":
        return gen_mobile(rng, "plain")
    if variant == "cc":
        return gen_mobile(rng, rng.choice(["plus86", "plus86_space", "0086"]))
    if variant == "fullwidth":
        return gen_mobile(rng, "fullwidth")
    if variant == "spaced":
        return gen_mobile(rng, rng.choice(["space_3_4_4", "dash_3_4_4"]))
    return gen_landline(rng) if rng.random() < 0.22 else gen_mobile(rng)


def gen_email(rng: random.Random, variant: str | None = None) -> _Gen:
    form = variant or _pick_form(
        rng,
        [
            ("pinyin", 35),
            ("qq_numeric", 20),
            ("dotted", 15),
            ("plus_tag", 8),
            ("uppercase", 7),
            ("corporate", 15),
        ],
    )
    p, g = rng.choice(PINYIN), rng.choice(PINYIN_GIVEN)
    if form == "pinyin":
        suffix = rng.choice(["", _digits(rng, 2), _digits(rng, 4), "_" + _digits(rng, 3)])
        v = f"{p}{g}{suffix}@{rng.choice(EMAIL_DOMAINS)}"
    elif form == "qq_numeric":
        v = f"{rng.choice('123456789')}{_digits(rng, rng.choice([7, 8, 9]))}@qq.com"
    elif form == "dotted":
        v = f"{g}.{p}{_digits(rng, rng.choice([0, 2]))}@{rng.choice(EMAIL_DOMAINS)}"
    elif form == "plus_tag":
        tag = rng.choice(["shop", "taobao", "jd", "vip"])
        v = f"{p}{g}+{tag}@{rng.choice(['gmail.com', 'outlook.com'])}"
    elif form == "uppercase":
        v = f"{p.upper()}{g.upper()}{_digits(rng, 2)}@{rng.choice(EMAIL_DOMAINS).upper()}"
    elif form == "corporate":
        v = f"{g}.{p}@{rng.choice(CORP_DOMAINS)}"
    else:
        raise ValueError(form)
    return "", v, "", form


def _id_number(rng: random.Random, want_x: bool = False) -> str:
    while True:
        region = rng.choice(REGION_CODES)
        start = _dt.date(1950, 1, 1).toordinal()
        end = _dt.date(2006, 12, 31).toordinal()
        d = _dt.date.fromordinal(rng.randint(start, end))
        body = region + d.strftime("%Y%m%d") + _digits(rng, 3)
        chk = id_check_char(body)
        if want_x and chk != "X":
            continue
        return body + chk


def gen_id(rng: random.Random, variant: str | None = None) -> _Gen:
    form = variant or _pick_form(
        rng, [("plain", 78), ("fullwidth", 8), ("lower_x", 8), ("upper_x", 6)]
    )
    if form == "lower_x":
        return "", _id_number(rng, True).lower(), "", form
    if form == "upper_x":
        return "", _id_number(rng, True), "", form
    n = _id_number(rng)
    if form == "fullwidth":
        return "", _fw(n), "", form
    return "", n, "", "plain"


def _card_number(rng: random.Random, network: str) -> str:
    if network == "unionpay":
        length = rng.choice([16, 19, 19])
        body = rng.choice(UNIONPAY_BINS)
    elif network == "visa":
        length, body = 16, "4" + _digits(rng, 5)
    elif network == "mastercard":
        length = 16
        body = (
            str(rng.randint(51, 55)) + _digits(rng, 4)
            if rng.random() < 0.7
            else str(rng.randint(2221, 2720)) + _digits(rng, 2)
        )
    elif network == "amex":
        length, body = 15, rng.choice(["34", "37"]) + _digits(rng, 4)
    else:
        raise ValueError(network)
    body += _digits(rng, length - 1 - len(body))
    return body + luhn_check_digit(body)


def gen_card(rng: random.Random, variant: str | None = None) -> _Gen:
    network = _pick_form(rng, [("unionpay", 60), ("visa", 15), ("mastercard", 15), ("amex", 10)])
    n = _card_number(rng, network)
    grouped = variant == "grouped" or (variant is None and rng.random() < 0.35)
    if grouped:
        if network == "amex":
            v = f"{n[:4]} {n[4:10]} {n[10:]}"
        else:
            v = " ".join(n[i : i + 4] for i in range(0, len(n), 4))
        return "", v, "", f"{network}_{len(n)}_grouped"
    return "", n, "", f"{network}_{len(n)}_plain"


def gen_ipv4(rng: random.Random, variant: str | None = None) -> _Gen:
    kind = rng.choice(["public", "public", "private"])
    if kind == "private":
        c = rng.choice(["10", "192.168", "172"])
        if c == "10":
            v = f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        elif c == "192.168":
            v = f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        else:
            v = f"172.{rng.randint(16, 31)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    else:
        first = rng.choice(
            [
                36,
                39,
                42,
                49,
                58,
                59,
                60,
                61,
                101,
                106,
                110,
                111,
                112,
                113,
                114,
                115,
                116,
                117,
                119,
                120,
                121,
                122,
                123,
                124,
                125,
                140,
                171,
                175,
                180,
                182,
                183,
                202,
                203,
                210,
                211,
                218,
                219,
                220,
                221,
                222,
                223,
            ]
        )
        v = f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    if variant == "port" or (variant is None and rng.random() < 0.15):
        return "", v, f":{rng.choice([80, 443, 8080, 8443, 3306, 22, 9000])}", kind + "_with_port"
    return "", v, "", kind


def gen_ipv6(rng: random.Random, variant: str | None = None) -> _Gen:
    prefix = rng.choice(["2409:8a00", "240e:3b0", "2408:8207", "2001:da8", "2400:da00"])
    form = variant or _pick_form(
        rng, [("full", 35), ("compressed", 40), ("link_local", 10), ("bracket_port", 15)]
    )

    def h() -> str:
        return format(rng.randint(0, 0xFFFF), "x")

    if form == "full":
        v = (
            prefix
            + ":"
            + ":".join(
                format(rng.randint(0, 0xFFFF), "04x") for _ in range(8 - prefix.count(":") - 1)
            )
        )
        return "", v, "", form
    if form == "link_local":
        return "", f"fe80::{h()}:{h()}:{h()}:{h()}", "", form
    v = f"{prefix}:{h()}::{h()}:{h()}"
    if form == "bracket_port":
        return "[", v, f"]:{rng.choice([443, 8443, 80])}", form
    return "", v, "", form


def gen_passport(rng: random.Random, variant: str | None = None) -> _Gen:
    letter = variant or rng.choice("EEEG")
    return "", letter + rng.choice("123456789") + _digits(rng, 7), "", letter


def _plate_tail5(rng: random.Random) -> str:
    # mostly digits with 0-2 letters mixed in
    chars = [rng.choice("0123456789") for _ in range(5)]
    for _ in range(rng.choice([0, 0, 1, 1, 2])):
        chars[rng.randrange(5)] = rng.choice(PLATE_LETTERS)
    return "".join(chars)


def gen_plate(rng: random.Random, variant: str | None = None) -> _Gen:
    prov, city = rng.choice(PROVINCE_CHARS), rng.choice(PLATE_LETTERS[:12])
    form = variant or _pick_form(
        rng, [("standard", 50), ("dot", 15), ("nev_small", 20), ("nev_large", 10), ("space", 5)]
    )
    if form == "standard":
        v = prov + city + _plate_tail5(rng)
    elif form == "dot":
        v = prov + city + "·" + _plate_tail5(rng)
    elif form == "space":
        v = prov + city + " " + _plate_tail5(rng)
    elif form == "nev_small":
        v = (
            prov
            + city
            + rng.choice("DF")
            + rng.choice(PLATE_LETTERS + "0123456789")
            + _digits(rng, 4)
        )
    elif form == "nev_large":
        v = prov + city + _digits(rng, 5) + rng.choice("DF")
    else:
        raise ValueError(form)
    return "", v, "", form


def _name(rng: random.Random) -> str:
    sur = rng.choice(SURNAMES_2) if rng.random() < 0.08 else rng.choice(SURNAMES_1)
    n = 1 if rng.random() < 0.3 else 2
    return sur + "".join(rng.choice(GIVEN) for _ in range(n))


def gen_name(rng: random.Random, variant: str | None = None) -> _Gen:
    return "", _name(rng), "", "name"


def _building(rng: random.Random) -> str:
    return rng.choice(
        [
            f"{rng.randint(1, 30)}栋{rng.randint(1, 4)}单元"
            f"{rng.randint(1, 32)}{rng.randint(1, 6):02d}室",
            f"{rng.choice('ABCD')}座{rng.randint(3, 28)}{rng.randint(1, 12):02d}室",
            f"{rng.randint(1, 20)}号楼{rng.randint(1, 3)}单元"
            f"{rng.randint(1, 18)}0{rng.randint(1, 4)}",
            f"{rng.randint(1, 12)}幢{rng.randint(1, 26)}0{rng.randint(1, 4)}室",
        ]
    )


def gen_addr(rng: random.Random, variant: str | None = None) -> _Gen:
    form = variant or _pick_form(
        rng,
        [
            ("road", 35),
            ("road_no_province", 15),
            ("estate", 30),
            ("rural", 12),
            ("rural_prefixed", 8),
        ],
    )
    if form in ("road", "road_no_province"):
        prov, city, dists = rng.choice(CITY_TABLE)
        head = prov + city if (form == "road" or not city) else city
        v = f"{head}{rng.choice(dists)}{rng.choice(ROADS)}{rng.randint(1, 999)}号{_building(rng)}"
        return "", v, "", form
    if form == "estate":
        prov, city, dists = rng.choice(CITY_TABLE)
        head = city or prov
        est = rng.choice(ESTATES) + "小区"
        tail = rng.choice(
            [
                f"{rng.randint(1, 40)}栋{rng.randint(1, 3)}单元"
                f"{rng.randint(1, 30)}0{rng.randint(1, 4)}",
                f"{rng.randint(1, 40)}号楼{rng.randint(1, 30)}0{rng.randint(1, 4)}室",
                f"{rng.randint(1, 40)}幢",
            ]
        )
        return "", f"{head}{rng.choice(dists)}{est}{tail}", "", form
    pre, county, towns = rng.choice(RURAL_TABLE)
    group = rng.choice(
        [
            f"{rng.randint(1, 12)}组",
            f"{rng.choice(CN_NUM)}组",
            f"{rng.choice(CN_NUM)}组{rng.randint(1, 88)}号",
        ]
    )
    v = f"{county}{rng.choice(towns)}{rng.choice(VILLAGES)}{group}"
    if form == "rural_prefixed":
        v = pre + v
    return "", v, "", form


LABEL_GENS: dict[str, tuple[str, Callable[[random.Random, str | None], _Gen]]] = {
    "name": ("person_name", gen_name),
    "phone": ("phone", gen_phone),
    "email": ("email", gen_email),
    "id": ("cn_resident_id", gen_id),
    "card": ("bank_card", gen_card),
    "ipv4": ("ipv4", gen_ipv4),
    "ipv6": ("ipv6", gen_ipv6),
    "passport": ("cn_passport", gen_passport),
    "plate": ("cn_license_plate", gen_plate),
    "addr": ("address", gen_addr),
}


# ---------------------------- hard negatives --------------------------------


def _rand_dt(rng: random.Random) -> _dt.datetime:
    start = _dt.datetime(2024, 1, 1).timestamp()
    end = _dt.datetime(2026, 12, 31).timestamp()
    return _dt.datetime.fromtimestamp(rng.randint(int(start), int(end)))


def neg_order(rng: random.Random) -> tuple[str, str]:
    f = rng.choice(["taobao19", "jd12", "pdd_dash", "prefixed18"])
    if f == "taobao19":
        return rng.choice("123456789") + _digits(rng, 18), "order_no"
    if f == "jd12":
        return rng.choice("23") + _digits(rng, 11), "order_no"
    if f == "pdd_dash":
        return _rand_dt(rng).strftime("%y%m%d") + "-" + _digits(rng, 15), "order_no"
    return _rand_dt(rng).strftime("%Y%m%d") + _digits(rng, 10), "order_no"


def neg_track(rng: random.Random) -> tuple[str, str]:
    f = rng.choice(["SF", "YT", "JD", "ZTO", "YD", "EMS"])
    if f == "SF":
        return "SF" + rng.choice("1234") + _digits(rng, 12), "tracking_no"
    if f == "YT":
        return "YT" + rng.choice("6789") + _digits(rng, 12), "tracking_no"
    if f == "JD":
        return rng.choice(["JDVA", "JDVB", "JD00"]) + _digits(rng, 11), "tracking_no"
    if f == "ZTO":
        return "7" + rng.choice("3567") + _digits(rng, 12), "tracking_no"
    if f == "YD":
        return "43" + _digits(rng, 11), "tracking_no"
    return "E" + rng.choice("ABCM") + _digits(rng, 9) + "CN", "tracking_no"


def neg_ts14(rng: random.Random) -> tuple[str, str]:
    return _rand_dt(rng).strftime("%Y%m%d%H%M%S"), "compact_timestamp"


def neg_epoch(rng: random.Random) -> tuple[str, str]:
    return str(int(_rand_dt(rng).timestamp()) * 1000 + rng.randint(0, 999)), "epoch_millis"


def neg_dt(rng: random.Random) -> tuple[str, str]:
    return _rand_dt(rng).strftime("%Y-%m-%d %H:%M:%S"), "datetime"


def neg_ts_iso(rng: random.Random) -> tuple[str, str]:
    return _rand_dt(rng).strftime("%Y-%m-%dT%H:%M:%S") + rng.choice(
        ["+08:00", "Z", f".{rng.randint(0, 999):03d}Z"]
    ), "datetime"


def neg_price(rng: random.Random) -> tuple[str, str]:
    a = rng.choice([rng.randint(9, 99), rng.randint(100, 999), rng.randint(1000, 19999)])
    f = rng.choice(["yen_comma", "yuan", "fw_yen", "rmb", "decimal_yuan"])
    if f == "yen_comma":
        return f"¥{a:,}.{rng.choice(['00', '90', '99'])}", "price"
    if f == "yuan":
        return f"{a}元", "price"
    if f == "fw_yen":
        return f"￥{a}.{rng.randint(0, 9)}", "price"
    if f == "rmb":
        return f"RMB {a:.2f}", "price"
    return f"{a}.{rng.randint(10, 99)}元", "price"


def neg_ean(rng: random.Random) -> tuple[str, str]:
    body = "69" + _digits(rng, 10)
    return body + ean13_check(body), "ean13"


def neg_sku(rng: random.Random) -> tuple[str, str]:
    f = rng.choice(["a", "b", "c", "d"])
    letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    if f == "a":
        return (
            f"SKU-{rng.choice(letters)}{rng.choice(letters)}{_digits(rng, 4)}"
            f"-{rng.choice(['BLK', 'WHT', 'RED', 'XL', 'M'])}",
            "sku",
        )
    if f == "b":
        return (
            f"{rng.choice(letters)}{rng.choice(letters)}{_digits(rng, 4)}-{_digits(rng, 2)}",
            "sku",
        )
    if f == "c":
        return "10" + _digits(rng, 10), "sku"
    return f"{rng.choice(letters)}{_digits(rng, 6)}{rng.choice(letters)}", "sku"


def neg_ver(rng: random.Random) -> tuple[str, str]:
    f = rng.choice(["v3", "p3", "p4", "beta"])
    if f == "v3":
        return f"v{rng.randint(1, 12)}.{rng.randint(0, 30)}.{rng.randint(0, 20)}", "version"
    if f == "p3":
        return f"{rng.randint(1, 9)}.{rng.randint(0, 99)}.{rng.randint(0, 300)}", "version"
    if f == "p4":
        return (
            f"{rng.randint(1, 20)}.{rng.randint(0, 9)}.{rng.randint(0, 30)}"
            f".{rng.randint(1000, 9999)}",
            "version_4part",
        )
    return (
        f"{rng.randint(1, 5)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}-beta.{rng.randint(1, 9)}",
        "version",
    )


def neg_room(rng: random.Random) -> tuple[str, str]:
    return rng.choice(
        [
            f"{rng.randint(1, 30)}{rng.randint(1, 20):02d}",
            f"B{rng.randint(1, 3)}{rng.randint(1, 60):02d}",
            f"{rng.randint(100, 999)}",
        ]
    ), "room_no"


def neg_qty(rng: random.Random) -> tuple[str, str]:
    n = rng.randint(1, 50)
    return rng.choice(
        [f"x{n}", f"×{n}", f"{n}件", f"{n}盒", f"{n}箱", f"{n}份", f"{n}斤"]
    ), "quantity"


def neg_date(rng: random.Random) -> tuple[str, str]:
    d = _rand_dt(rng)
    return rng.choice(
        [
            d.strftime("%Y-%m-%d"),
            d.strftime("%Y/%m/%d"),
            f"{d.month}月{d.day}日",
            f"{d.year}年{d.month}月{d.day}日",
            d.strftime("%m-%d"),
        ]
    ), "date"


def neg_coupon(rng: random.Random) -> tuple[str, str]:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return rng.choice(
        [
            f"MJ{rng.choice([20, 30, 50, 100])}-" + "".join(rng.choice(alphabet) for _ in range(5)),
            "".join(rng.choice(alphabet) for _ in range(8)),
            f"VIP{rng.randint(2024, 2026)}" + "".join(rng.choice(alphabet) for _ in range(4)),
        ]
    ), "coupon_code"


def neg_surtitle(rng: random.Random) -> tuple[str, str]:
    s = rng.choice(SURNAMES_1)
    return s + rng.choice(TITLES_M + TITLES_F), "surname_title"


def neg_uscc(rng: random.Random) -> tuple[str, str]:
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    return "91" + rng.choice(REGION_CODES) + "".join(
        rng.choice(alphabet) for _ in range(10)
    ), "tax_id"


def neg_empid(rng: random.Random) -> tuple[str, str]:
    return rng.choice("EG") + _digits(rng, rng.choice([4, 5, 6])), "employee_id"


def neg_last4(rng: random.Random) -> tuple[str, str]:
    return _digits(rng, 4), "card_last4"


NEG_GENS: dict[str, Callable[[random.Random], tuple[str, str]]] = {
    "order": neg_order,
    "track": neg_track,
    "ts14": neg_ts14,
    "epoch": neg_epoch,
    "dt": neg_dt,
    "tsiso": neg_ts_iso,
    "price": neg_price,
    "ean": neg_ean,
    "sku": neg_sku,
    "ver": neg_ver,
    "room": neg_room,
    "qty": neg_qty,
    "date": neg_date,
    "coupon": neg_coupon,
    "surtitle": neg_surtitle,
    "uscc": neg_uscc,
    "empid": neg_empid,
    "last4": neg_last4,
}

FILLERS: dict[str, list[str]] = {
    "product": PRODUCTS,
    "shop": SHOPS,
    "bank": BANKS,
    "company": COMPANIES,
    "surname": SURNAMES_1,
}

# ----------------------------------------------------------------------------
# templates: {kind[:variant][@form][=var]}
#   name forms: labelled, speaker, before_title, verb, intro, relation, possessive,
#   after_role, list, log, signature, bare (no cue at all)
# ----------------------------------------------------------------------------

TEMPLATES: list[tuple[str, str]] = [
    # ---- customer-service chat ----
    (
        "chat",
        "客服：您好，这里是{shop}官方旗舰店，请问有什么可以帮您？\n"
        "买家：你好，我的订单{order}显示已签收，但我没收到。\n"
        "客服：亲，麻烦提供一下收件人姓名和电话哦。\n"
        "买家：收件人{name@labelled}，电话{phone:mobile}。",
    ),
    (
        "chat",
        "{name@speaker=a}：在吗？我刚下单的{product}能改地址吗？\n"
        "客服：在的亲，请发新地址。\n"
        "{name@speaker=a}：改成{addr}，电话不变还是{phone:mobile}。",
    ),
    (
        "chat",
        "买家：我是{name@intro}，上周买的{product}有质量问题，想退货。\n"
        "客服：好的，已为您申请，退货单号{track}，退款{price}将原路退回。",
    ),
    (
        "chat",
        "客服：{surtitle}您好，需要核实一下您的身份证后四位。\n"
        "买家：我直接发全号吧 {id}，名字是{name@labelled}。",
    ),
    (
        "chat",
        "买家：快递到了让{name@verb}来取，她电话{phone}，我{date}之前都不在家。\n"
        "客服：好的，已备注。",
    ),
    (
        "chat",
        "客服：亲，您的优惠券{coupon}已经发放，满{price}可用，周末前有效哦～\n"
        "买家：好的谢谢。收货的是我老公{name@relation}，电话{phone:mobile}，麻烦让快递马上打给他。",
    ),
    (
        "chat",
        "客服小李：请问需要开发票吗？\n"
        "{name@speaker}：要的，发到邮箱{email}，我的座机{phone:landline}。",
    ),
    (
        "chat",
        "客服：请提供持卡人姓名和卡号。\n"
        "买家：{name@speaker}，卡号{card:grouped}，身份证{id}。\n"
        "客服：收到，{date}前退到账。",
    ),
    (
        "chat",
        "{name@speaker=a}：你们{product}什么时候发货？\n"
        "客服：亲，预计{date}发出哦。\n"
        "{name@speaker=a}：行，那帮我备注一下，到了打{phone}。",
    ),
    # ---- order remarks ----
    ("remark", "订单备注：请发顺丰，不要放快递柜。收件人：{name@labelled}，{phone}，{addr}。"),
    (
        "remark",
        "备注：送货前打电话{phone:mobile}，没人接就打{phone:landline}，白色那款不要发错了，{qty}。",
    ),
    ("remark", "【订单备注】收货人{name@labelled}/{phone:mobile}/{addr}/周末也可以送"),
    (
        "remark",
        "买家留言：礼物请不要放价格单！寄给{name@verb}，放{addr}附近的菜鸟驿站就行，电话{phone}。",
    ),
    ("remark", "留言：{sku} 要黄色的，数量{qty}，{name@bare}{phone:mobile}"),
    # ---- delivery notes ----
    ("delivery", "派送备注：{addr}门口放着就行，到了打{phone}，找{name@verb}。"),
    ("delivery", "快递单号{track}，收件人{name@labelled}，收件地址：{addr}，联系电话：{phone}。"),
    (
        "delivery",
        "骑手请注意：{addr}，电梯坏了请走楼梯，到了给{name@before_title}先生打电话{phone:mobile}。",
    ),
    (
        "delivery",
        "同城配送｜取件人：{name@labelled}｜取件码 {coupon}｜电话 {phone:mobile}｜预计{date}送达",
    ),
    (
        "delivery",
        "【驿站通知】您的包裹{track}已到{addr}驿站，凭取件码{coupon}领取，咨询{phone:landline}。",
    ),
    # ---- refund requests ----
    (
        "refund",
        "退款申请：订单号{order}，商品{product}，金额{price}，"
        "退款请打到{name@possessive}的银行卡{card}，开户行{bank}。",
    ),
    (
        "refund",
        "您好，我申请仅退款，原因：收到的{product}是坏的。我叫{name@intro}，手机{phone}，"
        "支付宝绑定邮箱{email}，万一联系不上请发邮件。",
    ),
    (
        "refund",
        "售后工单#{order}：客户要求退货退款{price}，退回地址{addr}，联系人{name@labelled} "
        "{phone:landline}。",
    ),
    ("refund", "退款到账了吗？我的卡号是{card:grouped}，持卡人{name@labelled}，已经等了三天了。"),
    # ---- complaints ----
    (
        "complaint",
        "投诉工单 {order}\n"
        "投诉人：{name@labelled}\n"
        "身份证号：{id}\n"
        "联系方式：{phone}\n"
        "内容：快递员{name@after_role}态度很差，于是我要求换人派送。",
    ),
    (
        "complaint",
        "我要投诉！{date}下单的{product}到现在还没发，打你们客服{phone:landline}一直没人接，"
        "太不方便了，许多人都遇到过。",
    ),
    (
        "complaint",
        "投诉内容：{name@before_title}女士反映其个人信息（手机号{phone:mobile}、住址{addr}）"
        "被泄露，请安全部门核查。",
    ),
    ("complaint", "差评原因：包装破损，石头一样硬的泡沫都碎了。联系我：{email} 或 {phone}"),
    # ---- log lines ----
    (
        "log",
        "{tsiso} INFO [order-svc] create_order order_id={order} user_phone={phone:mobile_plain} "
        "ip={ipv4} sku={sku} amount={price}",
    ),
    ("log", "[{tsiso}] WARN login failed for {email} from {ipv6} (attempt 3/5, client {ver})"),
    ("log", "{ts14}|payment|card={card}|holder={name@log}|status=SUCCESS|trace={epoch}"),
    (
        "log",
        "POST /api/v2/address/update 200 {ipv4} uid={order} "
        'body={"name":"{name@log}","mobile":"{phone}","addr":"{addr}"}',
    ),
    ("log", "kyc_check passport={passport} id_no={id} result=PASS latency=23ms build={ver}"),
    ("log", "{dt},512 DEBUG sms.send to={phone:cc} tpl=ORDER_SHIPPED tracking={track}"),
    (
        "log",
        '{ipv4} - - [06/Dec/2026:18:12:34 +0800] "GET /order/{order}?ts={epoch} HTTP/1.1" 200 '
        '5123 "-" "Mozilla/5.0"',
    ),
    ("log", "parking_gate plate={plate} in={ts14} fee={price} gate_ip={ipv4} fw={ver}"),
    ("log", "用户{name@log}（uid={order}）绑定邮箱{email}成功，登录IP {ipv6}"),
    # ---- invoice requests ----
    (
        "invoice",
        "发票申请：抬头 {company}，税号 {uscc}，收票邮箱 {email}，联系人 {name@labelled} {phone}。",
    ),
    ("invoice", "需要增值税专票，开户行{bank}，账号{card}，地址电话：{addr} {phone:landline}。"),
    ("invoice", "麻烦开个人发票，姓名{name@labelled}，身份证{id}，寄到{addr}，金额按{price}开。"),
    # ---- address change ----
    ("addr_change", "地址填错了，麻烦改成：{addr}，收件人改为{name@labelled}，电话{phone}。谢谢！"),
    ("addr_change", "亲，原地址不要了，新地址 {addr}，还是{name@before_title}女士收。"),
    (
        "addr_change",
        "改地址：{addr:rural}，找{name@verb}，手机{phone:mobile}，村里快递不上门，放到村口小卖部。",
    ),
    ("addr_change", "修改收货信息 旧：{addr} 新：{addr} 联系人不变，订单{order}"),
    # ---- group buy ----
    (
        "groupbuy",
        "【团购接龙】{date}到货\n"
        "1. {name@list} {qty} {phone:mobile}\n"
        "2. {name@list} {qty}\n"
        "3. {name@list} {qty} {addr:estate}",
    ),
    ("groupbuy", "团长好，我要{qty}{product}，送到{addr:estate}，我姓{surname}，电话{phone}"),
    ("groupbuy", "拼团成功！{name@verb}邀请你参与拼单，还差{qty}，券码{coupon}，拼单价{price}。"),
    (
        "groupbuy",
        "{name@speaker}：我是团长，这次{product}团购价{price}，截止{date}，有问题打我电话 "
        "{phone:mobile}",
    ),
    # ---- WeChat casual ----
    ("wechat", "在吗在吗，帮我收个快递呗，写的{name@possessive}的名字，电话{phone}，我周末回来拿"),
    ("wechat", "哈哈{name@bare}也买了同款，黄色的好看，{price}入的"),
    ("wechat", "你把卡号发我：{card}，名字{name@labelled}，我马上转你"),
    ("wechat", "我新号{phone:fullwidth}，旧的不用了，存一下哈"),
    ("wechat", "{name@bare}{phone:mobile}{addr}"),
    ("wechat", "明天{name@verb}开车来接，车牌{plate}，白色的SUV，别认错了"),
    ("wechat", "{name@verb}说他的护照号是{passport}，让我帮忙订机票，邮箱用{email}"),
    ("wechat", "群里谁认识{name@bare}？留的电话{phone}打不通，万一是错的呢"),
    ("wechat", "老婆，{name@verb}刚给我发了个地址：{addr}，你看下是不是你妈家"),
    ("wechat", "{name@bare}今天可高兴了，终于抢到{product}，才{price}"),
    ("wechat", "昨天和{name@bare}去提车了，{plate:nev_small}，绿牌真香"),
    # ---- misc / forms ----
    ("form", "实名认证：姓名 {name@labelled} 证件类型 护照 证件号码 {passport} 手机 {phone:cc}"),
    (
        "form",
        "车辆信息登记：车主{name@labelled}，车牌号{plate}，停车位B2-{room}，"
        "物业电话{phone:landline}",
    ),
    (
        "form",
        "海关清关资料：收件人{name@labelled}，身份证号码{id:fullwidth}，手机号{phone}，"
        "跨境订单{order}",
    ),
    (
        "system",
        "系统消息：您的账号于{dt}在新设备登录（IP：{ipv4}），如非本人操作请联系{phone:landline}。",
    ),
    ("system", "商品条码{ean}，货号{sku}，版本{ver}，库存{qty}，单价{price}"),
    (
        "waybill",
        "快递面单：寄件人 {name@labelled} {phone:mobile} {addr}\n"
        "收件人 {name@labelled} {phone} {addr}\n"
        "运单号 {track} 时间 {ts14}",
    ),
    ("system", "充值记录：{dt} 向尾号{last4}的银行卡转账{price}，交易流水{order}，程序版本{ver}"),
    (
        "form",
        "会员资料更新：昵称 江南小雨，真实姓名 {name@labelled}，生日 {date}，常用邮箱 {email}，"
        "备用电话 {phone}。",
    ),
    (
        "complaint",
        "以上问题请尽快处理，我已经等了很久了，订单{order}。\n—— {name@signature} {phone:mobile}",
    ),
    (
        "service",
        "安装预约：师傅{date}上门，地址{addr:estate}，联系{name@before_title}先生 "
        "{phone:landline}，路由器后台{ipv4}",
    ),
    (
        "delivery",
        "物流异常：{track} 收件信息 {name@labelled}/{phone:spaced} 地址不详，请补充门牌号。",
    ),
    ("form", "IPv6白名单申请：申请人{name@labelled}，出口地址{ipv6}和{ipv4}，工号{empid}"),
    (
        "chat",
        "客服：亲，万一快递员联系不上您，会联系备用联系人{name@labelled}（{phone}），请知悉。",
    ),
    ("form", "酒店入住登记：{name@labelled}，{passport}，房间{room}，入住{date}，退房{date}"),
    ("store", "顾客{name@after_role}于{date}在门店购买{product}，金额{price}，会员手机{phone}"),
    (
        "log",
        "ERROR payment.refund failed: card={card:plain} reason=EXPIRED ip={ipv4:port} "
        "order={order} ts={epoch}",
    ),
    ("wechat", "{name@bare}和{name@bare}都说要，你先拼{qty}吧，地址就填{addr:estate}"),
    (
        "remark",
        "发货提醒：{sku}×1，收货地址 {addr:rural_prefixed}，联系人 {name@labelled}，"
        "{phone:mobile}，谢谢老板",
    ),
    (
        "chat",
        "买家：{name@speaker=a}\n"
        "买家：{phone:mobile}\n"
        "买家：{addr}\n"
        "客服：好的{surtitle}，已经帮您登记了。",
    ),
    ("wechat", "车停在{addr}门口，{plate:dot}，{name@bare}在车里等你"),
]


_SLOT = re.compile(r"\{([a-z0-9]+)(?::([a-z0-9_]+))?(?:@([a-z_]+))?(?:=([a-z]))?\}")
_SW = re.compile("|".join(SURNAME_WORDS))


def _render(template: str, rng: random.Random) -> Sample:
    parts: list[str] = []
    pos = 0
    labels: list[Label] = []
    negs: list[tuple[str, int, int]] = []
    bound: dict[str, tuple[str, str, str, str]] = {}

    def add_plain(s: str) -> None:
        nonlocal pos
        negs.extend(("surname_word", pos + m.start(), pos + m.end()) for m in _SW.finditer(s))
        parts.append(s)
        pos += len(s)

    last = 0
    for m in _SLOT.finditer(template):
        add_plain(template[last : m.start()])
        last = m.end()
        kind, variant, form_override, var = m.groups()
        if kind in LABEL_GENS:
            label_kind, fn = LABEL_GENS[kind]
            if var and var in bound:
                pre, val, post, form = bound[var]
            else:
                pre, val, post, form = fn(rng, variant)
                if var:
                    bound[var] = (pre, val, post, form)
            if form_override:
                form = form_override
            add_plain(pre)
            labels.append(Label(label_kind, pos, pos + len(val), form))
            parts.append(val)
            pos += len(val)
            add_plain(post)
        elif kind in NEG_GENS:
            val, form = NEG_GENS[kind](rng)
            negs.append((form, pos, pos + len(val)))
            parts.append(val)
            pos += len(val)
        elif kind in FILLERS:
            add_plain(rng.choice(FILLERS[kind]))
        else:
            raise KeyError(f"unknown slot {kind!r} in template {template!r}")
    add_plain(template[last:])
    text = "".join(parts)
    return Sample(text, tuple(labels), tuple(negs))


def corpus(count: int, seed: int = 1) -> list[Sample]:
    rng = random.Random(seed)
    out: list[Sample] = []
    order: list[int] = []
    while len(out) < count:
        if not order:
            order = list(range(len(TEMPLATES)))
            rng.shuffle(order)
        _, tpl = TEMPLATES[order.pop()]
        out.append(_render(tpl, rng))
    return out


# ----------------------------------------------------------------------------
# self-test
# ----------------------------------------------------------------------------


def _unfw(s: str) -> str:
    return "".join(chr(ord(c) - 0xFEE0) if 0xFF01 <= ord(c) <= 0xFF5E else c for c in s)


def _value_ok(lb: Label, v: str) -> bool:
    """Whether the labelled value `v` is well formed for its kind."""
    if lb.kind == "phone":
        d = re.sub(r"[^0-9]", "", _unfw(v))
        if not lb.form.startswith("mobile"):
            return d.startswith("0") and 10 <= len(d) <= 12
        if d.startswith("0086"):
            d = d[4:]
        elif d.startswith("86") and len(d) == 13:
            d = d[2:]
        return len(d) == 11 and d[:3] in MOBILE_PREFIXES and d != "13800138000"
    if lb.kind == "cn_resident_id":
        n = _unfw(v).upper()
        if len(n) != 18 or n[:6] not in REGION_CODES or id_check_char(n[:17]) != n[17]:
            return False
        try:
            _dt.date(int(n[6:10]), int(n[10:12]), int(n[12:14]))
        except ValueError:
            return False
        return True
    if lb.kind == "bank_card":
        n = v.replace(" ", "")
        return n.isdigit() and luhn_ok(n) and len(n) in (15, 16, 19)
    if lb.kind == "ipv4":
        return all(0 <= int(x) <= 255 for x in v.split(".")) and v.count(".") == 3
    if lb.kind == "ipv6":
        return ":" in v and re.fullmatch(r"[0-9a-f:]+", v) is not None
    if lb.kind == "cn_passport":
        return re.fullmatch(r"[EG]\d{8}", v) is not None
    if lb.kind == "cn_license_plate":
        return v[0] in PROVINCE_CHARS and len(v.replace("·", "").replace(" ", "")) in (7, 8)
    if lb.kind == "email":
        return re.fullmatch(r"[^@\s]+@[^@\s]+\.[A-Za-z.]+", v) is not None
    if lb.kind == "person_name":
        return 2 <= len(v) <= 4 and (v[0] in SURNAMES_1 or v[:2] in SURNAMES_2)
    if lb.kind == "address":
        return v[-1] not in "，。 "
    return True


def _validate(s: Sample) -> None:
    """Check one sample: every labelled value is well formed and no two spans overlap."""
    spans: list[tuple[int, int]] = []
    for lb in s.labels:
        v = s.text[lb.start : lb.end]
        if not v or v != v.strip():
            raise AssertionError(f"empty or padded span {lb}: {v!r}")
        if not _value_ok(lb, v):
            raise AssertionError(f"bad {lb.kind} value ({lb.form}): {v!r}")
        spans.append((lb.start, lb.end))
    for f, a, b in s.negatives:
        if not 0 <= a < b <= len(s.text):
            raise AssertionError(f"negative out of range: {(f, a, b)}")
        spans.append((a, b))
    spans.sort()
    for (_, end1), (start2, _) in itertools.pairwise(spans):
        if end1 > start2:
            raise AssertionError(f"overlapping spans in {s.text!r}: {spans}")


def _self_test() -> None:
    """Generate 5,000 samples, validate them all, and print a few with the label statistics."""
    if len(TEMPLATES) < 40:
        raise AssertionError(f"only {len(TEMPLATES)} templates")
    n_samples = 5000
    samples = corpus(n_samples, seed=1)
    if corpus(50, seed=1) != samples[:50]:
        raise AssertionError("not deterministic")
    kinds: Counter[str] = Counter()
    forms: Counter[tuple[str, str]] = Counter()
    negf: Counter[str] = Counter()
    words: Counter[str] = Counter()
    for s in samples:
        _validate(s)
        for lb in s.labels:
            kinds[lb.kind] += 1
            forms[(lb.kind, lb.form.split("_ext")[0] if lb.kind == "phone" else lb.form)] += 1
        for f, a, b in s.negatives:
            negf[f] += 1
            if f == "surname_word":
                words[s.text[a:b]] += 1
    if "13800138000" in "".join(s.text for s in samples):
        raise AssertionError("the well-known test number 13800138000 was generated")
    expected_kinds = {
        "phone",
        "email",
        "cn_resident_id",
        "bank_card",
        "ipv4",
        "ipv6",
        "cn_passport",
        "cn_license_plate",
        "person_name",
        "address",
    }
    if set(kinds) != expected_kinds:
        raise AssertionError(f"label kinds {dict(kinds)}")
    if set(words) != set(SURNAME_WORDS):
        raise AssertionError(f"surname words never planted: {set(SURNAME_WORDS) - set(words)}")

    for s in corpus(10, seed=7):
        print("-" * 72)
        print(s.text)
        for lb in s.labels:
            print(f"   [{lb.kind}/{lb.form}] {s.text[lb.start : lb.end]!r}")
        for f, a, b in s.negatives:
            print(f"   (neg {f}) {s.text[a:b]!r}")
    print("=" * 72)
    print(f"templates: {len(TEMPLATES)}   samples checked: {n_samples}")
    print("labels by kind:", dict(kinds))
    names = sum(v for (k, _), v in forms.items() if k == "person_name")
    bare = forms[("person_name", "bare")]
    print(f"person_name no-cue share: {bare}/{names} = {bare / names:.1%}")
    print("forms:")
    for k in sorted(kinds):
        print(f"  {k}: " + ", ".join(f"{f}={c}" for (kk, f), c in sorted(forms.items()) if kk == k))
    print("negatives:", dict(negf))
    print("self-test OK")


if __name__ == "__main__":
    _self_test()
