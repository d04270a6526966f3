"""A labelled corpus of what shoppers and shops write: chats, order and delivery notes, logs.

Every value is synthetic and made here, independently of piiguard's validators (check digits,
Luhn and issuer prefixes are computed by this module's own code), and planted in templates in
the ways input methods and copy-paste write them: full-width digits, grouped numbers, +86 and
0086, zero-width characters. Hard negatives (order and tracking numbers, timestamps, prices,
barcodes, SKUs, version strings, words that begin with a surname) are planted too, so that
false positives are counted where they happen.

    samples = corpus(6000)            # the same 6,000 samples on every run (seeded)
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Label", "Sample", "corpus"]


@dataclass(frozen=True)
class Label:
    """One planted value: the kind scan() should report, its span, and how it was written."""

    kind: str
    start: int
    end: int
    form: str


@dataclass(frozen=True)
class Sample:
    """One text with its planted values and its hard negatives (spans nothing should flag)."""

    text: str
    labels: tuple[Label, ...]
    negatives: tuple[tuple[str, int, int], ...]


# --- values -------------------------------------------------------------------------------

_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶"
    "程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾"
    "毛郝龚邵万钱严覃武戴莫孔向汤"
)
_COMPOUND = ("欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "慕容", "令狐", "太叔", "仲孙", "段干")
_GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂英华玉兰萍鹏辉建红玲桂林晨浩宇欣怡子涵梓轩"
    "雨萱一诺思远嘉琪佳豪俊熙博文志强晓东丹阳婷婷雪梅海燕国栋振华春生秋菊立新卫东建国嘉怡"
)
_MOBILE = (
    "130 131 132 133 134 135 136 137 138 139 147 150 151 152 153 155 156 157 158 159 166 "
    "173 175 176 177 178 180 181 182 183 184 185 186 187 188 189 191 193 195 198 199"
).split()
_AREAS = ("010", "021", "020", "022", "023", "025", "027", "028", "029", "0571", "0755", "0512")
_PROVINCE_CITY_DISTRICT = (
    ("浙江省", "杭州市", "西湖区", "330106"),
    ("广东省", "深圳市", "南山区", "440305"),
    ("广东省", "广州市", "天河区", "440106"),
    ("江苏省", "苏州市", "工业园区", "320571"),
    ("四川省", "成都市", "武侯区", "510107"),
    ("湖北省", "武汉市", "洪山区", "420111"),
    ("陕西省", "西安市", "雁塔区", "610113"),
    ("山东省", "青岛市", "崂山区", "370212"),
    ("福建省", "厦门市", "思明区", "350203"),
    ("河南省", "郑州市", "金水区", "410105"),
    ("", "北京市", "朝阳区", "110105"),
    ("", "上海市", "浦东新区", "310115"),
    ("", "天津市", "南开区", "120104"),
    ("", "重庆市", "渝中区", "500103"),
)
_ROADS = "建国 文三 人民 解放 中山 科技 学府 长江 滨江 新华 和平 幸福 光明 青年 友谊".split()
_ESTATES = "谢花园 阳光 翠苑 金色家园 碧桂园 万科城 绿城 保利 龙湖 幸福里".split()
_DOMAINS = ("qq.com", "163.com", "126.com", "example.com", "example.cn", "foxmail.com")
_PLATE_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤川宁琼"
_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_FULLWIDTH = str.maketrans("0123456789@.-X", "０１２３４５６７８９＠．－Ｘ")


def _digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(count))


def _luhn_complete(payload: str) -> str:
    total = 0
    for position, char in enumerate(reversed(payload)):
        digit = int(char)
        if position % 2 == 0:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return payload + str((10 - total % 10) % 10)


def _id_check(body: str) -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


def _ean13(rng: random.Random) -> str:
    body = "69" + _digits(rng, 10)
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


def _group(value: str, sizes: tuple[int, ...], separator: str) -> str:
    parts, position = [], 0
    for size in sizes:
        parts.append(value[position : position + size])
        position += size
    if position < len(value):
        parts.append(value[position:])
    return separator.join(parts)


def _name(rng: random.Random) -> str:
    surname = rng.choice(_COMPOUND) if rng.random() < 0.06 else rng.choice(_SURNAMES)
    return surname + "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2, 2))))


def _mobile(rng: random.Random) -> tuple[str, str]:
    number = rng.choice(_MOBILE) + _digits(rng, 8)
    form = rng.choices(
        ("plain", "3-4-4", "4-4-3", "+86", "0086", "fullwidth", "zero-width", "dots"),
        (50, 12, 5, 8, 3, 10, 4, 3),
    )[0]
    written = {
        "plain": number,
        "3-4-4": _group(number, (3, 4), rng.choice((" ", "-"))),
        "4-4-3": _group(number, (4, 4), " "),
        "+86": rng.choice(("+86", "+86 ", "(+86)")) + number,
        "0086": "0086" + number,
        "fullwidth": number.translate(_FULLWIDTH),
        "zero-width": _group(number, (3, 4), "\u200b"),
        "dots": _group(number, (3, 4), "."),
    }[form]
    return written, form


def _landline(rng: random.Random) -> tuple[str, str]:
    area = rng.choice(_AREAS)
    local = rng.choice("2345678") + _digits(rng, 7 if len(area) == 3 or rng.random() < 0.7 else 6)
    form = rng.choice(("dash", "plain", "brackets"))
    written = {"dash": f"{area}-{local}", "plain": area + local, "brackets": f"({area}){local}"}
    return written[form], "landline"


def _resident_id(rng: random.Random) -> tuple[str, str]:
    region = rng.choice(_PROVINCE_CITY_DISTRICT)[3]
    born = f"{rng.randint(1950, 2006)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    body = region + born + _digits(rng, 3)
    number = body + _id_check(body)
    form = rng.choices(("plain", "6-8-4", "fullwidth", "lower-x"), (70, 10, 12, 8))[0]
    if form == "6-8-4":
        return _group(number, (6, 8), " "), form
    if form == "fullwidth":
        return number.translate(_FULLWIDTH), form
    return (number.lower() if form == "lower-x" else number), form


def _card(rng: random.Random) -> tuple[str, str]:
    prefix, length = rng.choice(
        (
            ("62" + _digits(rng, 4), 16),
            ("6222" + _digits(rng, 2), 19),
            ("6217" + _digits(rng, 2), 19),
            ("4" + _digits(rng, 5), 16),
            (str(rng.randint(51, 55)) + _digits(rng, 4), 16),
            (str(rng.randint(2221, 2720)) + _digits(rng, 2), 16),
            (rng.choice(("34", "37")) + _digits(rng, 4), 15),
            (str(rng.randint(3528, 3589)) + _digits(rng, 2), 16),
        )
    )
    number = _luhn_complete(prefix + _digits(rng, length - len(prefix) - 1))
    if rng.random() < 0.35:
        return _group(number, (4, 6) if length == 15 else (4, 4, 4, 4), " "), "grouped"
    return number, "plain"


def _email(rng: random.Random) -> tuple[str, str]:
    local = rng.choice(("", "shop", "li", "wang", "buyer")) + _digits(rng, rng.randint(2, 9))
    written = f"{local}@{rng.choice(_DOMAINS)}"
    if rng.random() < 0.1:
        return written.replace("@", "＠"), "fullwidth-at"
    return written, "plain"


def _ip(rng: random.Random) -> tuple[str, str, str]:
    octets = ".".join(str(rng.randint(1, 254)) for _ in range(4))
    roll = rng.random()
    if roll < 0.6:
        return "ipv4", octets, "ipv4"
    if roll < 0.8:
        return "ipv6", "::ffff:" + octets, "mapped"
    groups = ":".join(f"{rng.randint(0, 0xFFFF):x}" for _ in range(8))
    return "ipv6", f"2001:db8:{groups.split(':', 2)[2]}", "ipv6"


def _passport(rng: random.Random) -> tuple[str, str]:
    return rng.choice(("E", "G")) + _digits(rng, 8), "passport"


def _plate(rng: random.Random) -> tuple[str, str]:
    head = rng.choice(_PLATE_PROVINCES) + rng.choice(_LETTERS)
    if rng.random() < 0.3:
        tail = rng.choice("DF") + "".join(rng.choice(_LETTERS + "0123456789") for _ in range(5))
        form = "new-energy"
    else:
        tail = "".join(rng.choice(_LETTERS[:8] + "0123456789" * 3) for _ in range(5))
        form = "plate"
    return head + rng.choice(("", "", "·", " ")) + tail, form


def _address(rng: random.Random) -> tuple[str, str]:
    province, city, district, _ = rng.choice(_PROVINCE_CITY_DISTRICT)
    head = rng.choice((province + city + district, city + district, city + district))
    if rng.random() < 0.4:
        tail = f"{rng.choice(_ESTATES)}小区{rng.randint(1, 30)}栋{rng.randint(1, 6)}单元"
        tail += f"{rng.randint(1, 33)}{rng.randint(1, 4):02d}室"
        form = "estate"
    else:
        tail = f"{rng.choice(_ROADS)}{rng.choice(('路', '街', '大道'))}{rng.randint(1, 999)}号"
        if rng.random() < 0.5:
            tail += f"{rng.randint(1, 12)}号楼{rng.randint(1, 30)}0{rng.randint(1, 9)}"
        form = "road"
    return head + tail, form


# --- hard negatives -----------------------------------------------------------------------


def _negative(rng: random.Random) -> tuple[str, str]:
    kind = rng.choice(
        ("order", "tracking", "timestamp", "epoch", "price", "barcode", "sku", "version",
         "bad-card", "date")
    )  # fmt: skip
    value = {
        "order": lambda: "2026" + _digits(rng, rng.randint(12, 15)),
        "tracking": lambda: rng.choice(("SF", "YT", "JD", "ZT")) + _digits(rng, 13),
        "timestamp": lambda: (
            f"2026{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
            + f"{rng.randint(0, 23):02d}{rng.randint(0, 59):02d}{rng.randint(0, 59):02d}"
        ),
        "epoch": lambda: "17" + _digits(rng, 11),
        "price": lambda: f"¥{rng.randint(1, 9)},{rng.randint(100, 999)}.{rng.randint(0, 99):02d}",
        "barcode": lambda: _ean13(rng),
        "sku": lambda: f"SKU-{rng.choice(_LETTERS)}{_digits(rng, 5)}-{rng.choice(('XL', 'M'))}",
        "version": lambda: (
            f"v{rng.randint(1, 12)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"
            + f".{rng.randint(0, 99)}"
        ),
        "bad-card": lambda: _broken_luhn(rng),
        "date": lambda: f"{rng.randint(2020, 2026)}年{rng.randint(1, 12)}月{rng.randint(1, 28)}日",
    }[kind]()
    return value, kind


def _broken_luhn(rng: random.Random) -> str:
    number = _luhn_complete("62" + _digits(rng, 13))
    return number[:-1] + str((int(number[-1]) + rng.randint(1, 9)) % 10)


#: Words that begin with a common surname and are no name.
_SURNAME_WORDS = (
    "高兴 马上 张开 方便 周末 黄色 白色 常用 林地 金额 江边 万一 许多 程序 曾经 于是 向您".split()
)

# --- templates ----------------------------------------------------------------------------

Part = str | tuple[str, Callable[[random.Random], tuple[str, str]]]


def _kind_of(kind: str) -> Callable[[random.Random], tuple[str, str, str]]:
    generators: dict[str, Callable[[random.Random], tuple[str, str]]] = {
        "phone": _mobile,
        "landline": _landline,
        "cn_resident_id": _resident_id,
        "bank_card": _card,
        "email": _email,
        "cn_passport": _passport,
        "cn_license_plate": _plate,
        "address": _address,
    }
    if kind == "ip":
        return _ip
    if kind == "person_name":
        return lambda rng: ("person_name", _name(rng), "name")
    generate = generators[kind]
    scan_kind = "phone" if kind == "landline" else kind

    def planted(rng: random.Random) -> tuple[str, str, str]:
        written, form = generate(rng)
        return scan_kind, written, form

    return planted


_TEMPLATES = (
    "收件人：{person_name}，电话{phone}，地址{address}",
    "收货人{person_name} {phone} {address}",
    "您好，我是{person_name}，订单{neg}一直没发货，手机{phone}",
    "{person_name}先生您好，您的快递{neg}已到{address}附近的驿站",
    "{person_name}女士，退款将原路退回尾号卡，卡号{bank_card}，请留意",
    "联系人:{person_name}  手机:{phone}  邮箱:{email}",
    "请帮我把地址改成{address}，收件人{person_name}",
    "身份证号{cn_resident_id}，姓名{person_name}，用于海关清关",
    "麻烦转告{person_name}，明天上午送到{address}",
    "客户{person_name}反馈商品有划痕，SKU {neg}，价格{neg}",
    "退款卡号{bank_card} {neg}件商品",
    "座机{landline}，工作日9点到18点，高兴为您服务",
    "门店电话{landline}转{neg_ext}，马上为您处理",
    "登录IP {ip}，时间{neg}，设备{neg}",
    "[{neg}] user login from {ip} ok",
    "护照号码{cn_passport}，出生日期{neg}",
    "车牌{cn_license_plate}的车停在{address}门口，方便的话挪一下",
    "发票抬头个人，邮箱{email}，订单号{neg}",
    "{person_name}说周末在家，快递放门卫，电话{phone}",
    "寄件人{person_name}，{landline}，寄到{address}",
    "银行卡{bank_card}绑定手机{phone}",
    "条码{neg} 版本{neg} 订单{neg}",
    "我叫{person_name}，身份证{cn_resident_id}，手机号{phone}，谢谢",
    "快递单号{neg}，收件地址{address}，{person_name}收",
    "许多顾客问白色款什么时候到货，程序员小王说周末",
    "{person_name}：你好，我的快递什么时候到？",
    "麻烦让快递员打{person_name}的电话，谢谢",
    "@{person_name} 请处理一下这个售后",
    "由{person_name}代收，放{address}门口就行",
    "顾客{person_name}投诉商品质量问题，订单{neg}",
    "备注：送货前请联系{person_name}",
    "今天{person_name}来电说要退货，马上说明一下情况",
    "地址是{address}，{person_name}收，{phone}",
    "这个周末黄色和白色都有货，许多人买，价格{neg}",
    "我们公司在上海市场部，金额已退，时间{neg}",
    "亲，地址写错了，应该是{address}",
    "客服小李说明天发货，单号{neg}",
)


def _render(template: str, rng: random.Random) -> Sample:
    text: list[str] = []
    labels: list[Label] = []
    negatives: list[tuple[str, int, int]] = []
    length = 0
    for piece in _split(template):
        if piece.startswith("{") and piece.endswith("}"):
            slot = piece[1:-1]
            if slot == "neg":
                value, form = _negative(rng)
                negatives.append((form, length, length + len(value)))
            elif slot == "neg_ext":
                value = _digits(rng, 3)
            else:
                kind, value, form = _kind_of(slot)(rng)
                labels.append(Label(kind, length, length + len(value), form))
        else:
            value = piece
        text.append(value)
        length += len(value)
    rendered = "".join(text)
    for word in _SURNAME_WORDS:
        at = rendered.find(word)
        if at >= 0:
            negatives.append(("surname-word", at, at + len(word)))
    return Sample(rendered, tuple(labels), tuple(negatives))


def _split(template: str) -> list[str]:
    pieces, position = [], 0
    while (start := template.find("{", position)) >= 0:
        end = template.index("}", start) + 1
        pieces += [template[position:start], template[start:end]]
        position = end
    pieces.append(template[position:])
    return [piece for piece in pieces if piece]


def corpus(count: int = 6000, *, seed: int = 2026) -> list[Sample]:
    """``count`` labelled samples, the same ones for the same seed."""
    rng = random.Random(seed)
    return [_render(rng.choice(_TEMPLATES), rng) for _ in range(count)]
