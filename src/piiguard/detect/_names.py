"""Chinese person names in text: a surname and one or two given characters, found by the
words people write around names.

A name has no check digit, and most surnames are also common characters (高, 马, 方, 周),
so a name is reported only where the text says it is one: after a label (收件人, 联系人,
姓名, ...), before a title (先生, 女士, 老师, ...), or between a weaker cue (客户, 我是,
转告, ...) and a word that ends a name (说, 收, 电话, punctuation). Given characters stop
at characters that do not occur in given names (的, 是, 在, 电, ...). See docs/choices.md
for how this was measured against the segmenters in the package index.
"""

from __future__ import annotations

import functools
import re

from piiguard.validate.cn_lexicon import COMPOUND_SURNAMES, SURNAMES, divisions, surname_words

__all__ = ["find_names"]

#: Labels after which a name is expected (then a colon, a space or nothing).
_STRONG_BEFORE = (
    "收件人|收货人|寄件人|发件人|联系人|姓名|名字|我叫|本人|持卡人|开户名|户名|签收人|"
    "经办人|负责人|领取人|乘车人|入住人|投保人|被保险人|申请人|代收人|提货人|取件人|车主|业主|"
    "房主|投诉人|举报人|收款人|付款人|开户人|账户名|下单人|订购人|预订人|登记人|报名人|姓名是|"
    "名字是|名字叫|叫做|收件信息|收货信息|寄件信息"
)
_WEAK_BEFORE = (
    "客户|顾客|买家|卖家|用户|会员|我是|转告|告诉|通知|联系|找|致|亲爱的|尊敬的|由|让|请|认识|"
    "老公|老婆|爱人|丈夫|妻子|妈妈|爸爸|儿子|女儿|哥哥|姐姐|弟弟|妹妹|同事|朋友|室友|家人|"
    "快递员|骑手|配送员|司机|客服|店长|店员|导购|业务员|专员|寄给|交给|转给|发给|打给"
)
#: Titles and words that follow a name.
_TITLES = "先生|女士|小姐|老师|同学|师傅|经理|总监|主管|阿姨|叔叔|大哥|大姐|医生|律师|老板"
_AFTER = (
    rf"{_TITLES}|收|说|反馈|反映|投诉|表示|称|来电|致电|留言|询问|咨询|要求|申请|下单|购买|退货|"
    rf"签收|代收|取件|您好|你好|邀请|来取|来拿|本人|电话|手机"
)
#: Words after a name that say it is one even inside a run of characters (今天张伟来电说).
_STRONG_AFTER = (
    rf"{_TITLES}|来电|致电|的电话|的手机|的快递|的订单|的名字|的银行卡|的账户|的身份证|的包裹|"
    rf"签收|代收"
)
#: Characters that end a given name: they are not found in given names.
_STOP = (
    "的了是在和与及或说要请把被给到从向对于就都也还又很更最已不没电话手机地址号码收件您你我他她们"
    "这那哪什么吗呢吧啊哦嗯谢好将会可以能个些来去订单货快递反馈表示称态"
)
_HAN = "\u4e00-\u9fff"
_RUN = rf"[{_HAN}]{{2,4}}"

_CANDIDATES = re.compile(
    # a name typed with spaces between its characters, after a label (收件人：张 伟)
    rf"(?:{_STRONG_BEFORE})[:：]\s*(?P<spaced>[{_HAN}](?:[ \u3000][{_HAN}]){{1,2}})(?![{_HAN}])"
    rf"|(?:{_STRONG_BEFORE})(?:信息|姓名|名称)?(?P<gap>(?:改为|改成|是|为)?[:：\s]*)(?P<labelled>{_RUN})"
    rf"|(?:{_WEAK_BEFORE}|@)(?P<cued>{_RUN}?)(?:(?![{_HAN}])|(?={_AFTER})|(?=[{_STOP}]))"
    rf"|(?<![{_HAN}])(?P<bounded>{_RUN}?)(?={_AFTER})"
    rf"|(?:^|(?<=\n))(?P<speaker>{_RUN}?)(?=[:：](?![0-9]))"
    rf"|(?P<titled>{_RUN})(?={_STRONG_AFTER})"
    # a short run standing alone between separators: a list entry, a log field, a signature
    rf"|(?:^|(?<=[\s:：，,。；;、|=\"“'(（\[【]))(?P<isolated>{_RUN}?)"
    rf"(?=$|[\s，,。；;、！!？?|\"”')）\]】×xX*0-9+])"
)


def _trim(run: str) -> str | None:
    """The name at the start of ``run``: a surname and one or two given characters that can
    be in a name, or None."""
    title = _TITLE_IN.search(run, 1)
    if title is not None:
        run = run[: title.start()]
    # a compound surname first (欧阳娜); a run that is one alone (公玉) is a surname and a
    # given character, when its first character is a surname
    for surname in (run[:2], run[:1]) if run[:2] in COMPOUND_SURNAMES else (run[:1],):
        if surname not in SURNAMES and surname not in COMPOUND_SURNAMES:
            continue
        given = 0
        for char in run[len(surname) : len(surname) + 2]:
            if char in _STOP_SET:
                break
            given += 1
        if given:
            return run[: len(surname) + given]
    return None


_STOP_SET = frozenset(_STOP)
#: Last characters of a place or a thing, never of a name standing alone (金华市, 高铁站).
_PLACE_ENDS = frozenset("省市区县镇村乡路街巷站店馆厅楼层号室栋院园城场厂所局部处司")
_TITLE_IN = re.compile(_TITLES)
#: Labels of a product's attributes, whose values are words, not names.
_ATTRIBUTE = re.compile(
    r"(?:颜色|色号|口味|款式|材质|面料|规格|尺码|型号|产地|品牌|香型|花型|系列|版本|类型|分类|口感|"
    r"风格|品种|茶类|木材|花材|图案|工艺|包装|味道)[:：]\s*$"
)
#: Everyday words that begin with a surname character, said where a name could stand
#: (马上说, 方便的话, 周末收): never a name.
_COMMON_WORDS = frozenset(
    "马上 高兴 方便 周末 黄色 白色 常用 金额 许多 程序 曾经 于是 向您 万一 江边 "
    "林地 安全 全部 明天 明白 文件 平时 成功 时间 应该 东西 通知 公司 国家 和平 "
    "路上 关于 关注 包装 包括 计划 余额 付款 付费 双方 单位 毛巾 石头 车辆 费用 "
    "钱包 花费 温度 水果 牛奶 白天 原因 左右 龙头 齐全 严重 尤其 连续 谷歌 华为 "
    "苏宁 京东 高速 高端 高清 高级 马克 马桶 方式 方面 方法 周一 周二 周三 周四 "
    "周五 周六 周日 周边 周期 黄金 白酒 常见 常规 金属 江湖 林业 万能 程度 于今 "
    "向上 向下 安装 安排 全新 明显 文字 平台 平安 时候 成本 通过 公斤 国内 国外 "
    "和好 路由 关闭 包邮 计算 余量 付清 单独 石材 车子 费心 钱款 花园 温馨 水平 "
    "牛仔 原来 左边 龙虾 齐心 严格 尤为 连接 华丽 宋体 唐装 韩版 冯氏 邓氏 曹操 "
    "彭湃 曾用 肖像 田园 董事 袁氏 潘多 于此 蒋氏 蔡氏 余下 杜绝 叶子 程控 苏打 "
    "魏氏 吕氏 丁香 任何 沈阳 姚氏 卢浮 姜黄 崔氏 钟表 谭氏 陆续 汪洋 范围 金色 "
    "石油 廖氏 贾氏 夏天 夏季 韦氏 付出 方向 白色款 邹氏 孟氏 熊猫 秦氏 邱氏 江南 "
    "尹氏 薛氏 闫氏 段落 雷达 侯氏 龙井 史上 陶瓷 黎明 贺卡 顾问 毛衣 郝氏 龚氏 "
    "邵氏 万元 钱币 严禁 武器 戴上 莫名 孔洞 向日 汤圆 关键 包裹 红色 红包 黄豆 "
    "白糖 高跟 高度 高温 马路 张贴 张开 王牌 李子 刘海 陈列 杨梅 赵氏 吴氏 周到 "
    "徐徐 孙子 朱红 胡子 郭氏 何时 何况 林林 罗马 郑重 梁氏 谢谢 宋朝 唐朝 许可 "
    "韩国 冯唐 曹氏 彭氏 肖氏 田地 董氏 潘氏 杜鹃 叶片 苏州 魏晋 吕布 丁丁 任务 "
    "沈氏 姚明 卢氏 姜汁 崔健 钟点 陆地 汪汪 范本 金子 石榴 夏日 方块 白菜 孟子 "
    "熊熊 秦朝 江西 段子 雷雨 龙虎 史诗 陶艺 黎族 贺礼 顾客 毛病 万达 钱塘 严实 "
    "覃氏 武汉 戴尔 莫斯 孔子 向导 汤面 常州 金华 温州 台州 江门 江阴 海口 海关 "
    "安徽 安静 宁波 宁静 和田 和睦 平板 平常 平均 全是 全都 明年 明早 明晚 成都 "
    "成为 成年 高中 高考 高新 东莞 东北 东南 南京 南宁 南昌 西安 北京 上海 广州 "
    "深圳".split()
)
#: Surname characters that are everyday words when a weak cue precedes them (客户后来, 给高).
_WORDLIKE = frozenset("后都那和能家相空查益别养须向于从时应成明安常乐元计强路全秋文国平红公东通")


@functools.cache
def _common_words() -> frozenset[str]:
    return _COMMON_WORDS | surname_words()


def _titled(run: str) -> tuple[int, str] | None:
    """The name that ends ``run`` (the text just before a title): the longest valid tail."""
    sizes = [size for size in (4, 3) if run[-size:][:2] in COMPOUND_SURNAMES] + [3, 2]
    for size in sizes:
        tail = run[-size:]
        if size <= len(run) and _trim(tail) == tail and tail not in _common_words():
            return len(run) - size, tail
    return None


def find_names(text: str) -> list[tuple[int, int, float]]:
    """(start, end, score) of each Chinese person name found in ``text``."""
    found: list[tuple[int, int, float]] = []
    search = _CANDIDATES.search
    position = 0
    while (match := search(text, position)) is not None:
        named = _named(match)
        if named is None:
            position = match.start() + 1  # a cue that led nowhere may hide the next one
            continue
        found.append(named)
        position = named[1]
    return found


def _closed_after_colon(match: re.Match[str]) -> tuple[int, int, float] | None:
    """A labelled run between a colon and a separator, that is a surname and one or two
    characters: the name whole, even with characters that end a name elsewhere
    (收件人：王可欣，, 姓名：陈和平 电话)."""
    run, end = match.group("labelled"), match.end("labelled")
    if ":" not in match.group("gap").replace("：", ":"):
        return None
    if end < len(match.string) and _is_han(match.string[end]):
        return None
    compound = run[:2] in COMPOUND_SURNAMES
    if not (compound or run[0] in SURNAMES) or len(run) > (4 if compound else 3):
        return None
    if _TITLE_IN.search(run, 1) is not None:
        return None
    return match.start("labelled"), end, 0.9


def _is_han(char: str) -> bool:
    return "\u4e00" <= char <= "\u9fff"


def _isolated(name: str, start: int, text: str) -> tuple[int, int, float] | None:
    """A run standing alone is a name only if it is no word or place, nor the value of a
    product's attribute (颜色：米白, 口味：麻辣)."""
    if _ATTRIBUTE.search(text, max(0, start - 8), start) is not None:
        return None
    compound = name[:2] in COMPOUND_SURNAMES
    if (name[0] in _WORDLIKE and not compound) or name[-1] in _PLACE_ENDS:
        return None
    if (name[:2] in _common_words() and not compound) or divisions().is_division(name):
        return None
    return start, start + len(name), 0.6


def _named(match: re.Match[str]) -> tuple[int, int, float] | None:
    """The name a candidate holds, as (start, end, score), or None."""
    group = match.lastgroup or "bounded"
    run = match.group(group)
    if group == "spaced":
        squeezed = run.replace(" ", "").replace("\u3000", "")
        if squeezed[0] not in SURNAMES or squeezed[0] in _WORDLIKE:
            return None
        return match.start(group), match.end(group), 0.9
    if group == "titled":
        titled = _titled(run)
        if titled is None:
            return None
        start = match.start(group) + titled[0]
        return start, start + len(titled[1]), 0.9
    if group == "labelled" and (whole := _closed_after_colon(match)) is not None:
        return whole
    name = _trim(run)
    if name is None:
        return None
    start = match.start(group)
    end = start + len(name)
    if group == "labelled":
        # 姓名和卡号: a surname that is also a word, right after the label, is the word
        if not match.group("gap") and name[0] in _WORDLIKE:
            return None
        return start, end, 0.9
    if _TITLE_IN.match(match.string, end) is not None:
        return start, end, 0.9
    if name in _common_words():
        return None
    if name != run or _TITLE_IN.fullmatch(name) is not None:
        return None  # the run is the name, or it is no name (白名单申请, 师傅)
    if group in ("isolated", "speaker"):
        return _isolated(name, start, match.string)
    if name[0] not in _WORDLIKE or len(name) >= 3:
        return start, end, 0.7
    return None
