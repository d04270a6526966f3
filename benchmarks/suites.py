"""The measured comparisons: each returns Ratio rows (ours or a peer against a baseline)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import phonenumbers
from pydantic import BaseModel

import piiguard as pg
from benchmarks._harness import Case, Ratio, best_ns
from benchmarks.aio import aio
from benchmarks.audit import audit
from benchmarks.consent import consent
from benchmarks.detection import Quality, detection_quality
from benchmarks.encryption import encryption
from benchmarks.epochs import epochs
from benchmarks.naive import naive_scan
from benchmarks.orm import orm
from benchmarks.retention import retention
from benchmarks.sharing import sharing
from benchmarks.tokenization import keyed_tokens_and_vault, tokenization

PHONE = "13812345678"
ID_NUMBER = "11010519491231002X"
NOTE = (
    "订单备注：请周一到周五送货，收件人张三丰，电话13812345678，地址北京市朝阳区建国路88号。"
    "如有问题请发邮件至zhangsan@example.com，或者联系客服。身份证11010519491231002X用于清关。"
    "The customer asked to deliver after 6pm and to leave the parcel with the concierge, thanks. "
)


def bare_phone_slice(value: str) -> str:
    """The hand-written phone mask piiguard is measured against."""
    return value[:3] + "****" + value[-4:]


def bare_id_slice(value: str) -> str:
    """The hand-written ID mask piiguard is measured against."""
    return value[0] + "****************" + value[-1]


def masking() -> list[Ratio]:
    """pg.mask against a bare slice, for phone and ID; Presidio's mask operator as a peer."""
    from presidio_anonymizer import AnonymizerEngine
    from presidio_anonymizer.entities import OperatorConfig, RecognizerResult
    from presidio_anonymizer.operators import Mask

    presidio_params = {"masking_char": "*", "chars_to_mask": 7, "from_end": False}
    presidio = Mask()
    engine = AnonymizerEngine()
    found = [RecognizerResult("PHONE_NUMBER", 0, len(PHONE), 1.0)]
    operators = {"DEFAULT": OperatorConfig("mask", presidio_params)}
    times = best_ns(
        {
            "bare phone": Case("f(v)", {"f": bare_phone_slice, "v": PHONE}),
            "pg phone": Case("mask(v, 'phone')", {"mask": pg.mask, "v": PHONE}),
            "bare id": Case("f(v)", {"f": bare_id_slice, "v": ID_NUMBER}),
            "pg id": Case("mask(v, 'cn_resident_id')", {"mask": pg.mask, "v": ID_NUMBER}),
            "pg id, resolved once": Case(
                "m(v)", {"m": pg.masker_for("cn_resident_id"), "v": ID_NUMBER}
            ),
            "presidio": Case(
                "op(v, p)", {"op": presidio.operate, "v": PHONE, "p": presidio_params}
            ),
            "presidio engine": Case(
                "engine.anonymize(v, found, operators=ops)",
                {"engine": engine, "v": PHONE, "found": found, "ops": operators},
            ),
        },
        number=20000,
    )
    return [
        Ratio("pg.mask(phone) / bare slice", times["pg phone"], times["bare phone"], 3.0),
        Ratio("pg.mask(cn_resident_id) / bare slice", times["pg id"], times["bare id"], 3.0),
        Ratio(
            "pg.masker_for(id) called / bare slice",
            times["pg id, resolved once"],
            times["bare id"],
            3.0,
        ),
        Ratio(
            "presidio Mask.operate(phone) / bare slice",
            times["presidio"],
            times["bare phone"],
            None,
        ),
        Ratio(
            "presidio AnonymizerEngine mask / bare slice",
            times["presidio engine"],
            times["bare phone"],
            None,
        ),
    ]


def detection() -> list[Ratio]:
    """pg.scan against one naive regex pass over the same note; scrubadub as a peer."""
    import scrubadub

    scrubber = scrubadub.Scrubber()
    times = best_ns(
        {
            "naive": Case("f(t)", {"f": naive_scan, "t": NOTE}),
            "pg": Case("scan(t)", {"scan": pg.scan, "t": NOTE}),
            "scrubadub": Case("list(s.iter_filth(t))", {"s": scrubber, "t": NOTE}),
        },
        number=500,
    )
    return [
        Ratio(
            f"pg.scan({len(NOTE)} chars, validated) / naive regex", times["pg"], times["naive"], 2.0
        ),
        Ratio("scrubadub iter_filth / naive regex", times["scrubadub"], times["naive"], None),
    ]


class PlainCustomer(BaseModel):
    """Five plain str fields: the baseline for model validation."""

    name: str
    phone: str
    email: str
    id_number: str
    address: str


class PIICustomer(pg.PIIModel):
    """The same five fields, typed as PII."""

    name: pg.PersonName
    phone: pg.Phone
    email: pg.Email
    id_number: pg.CNResidentID
    address: pg.Address


CUSTOMER = {
    "name": "张三丰",
    "phone": PHONE,
    "email": "zhangsan@example.com",
    "id_number": ID_NUMBER,
    "address": "北京市朝阳区建国路88号",
}


def fields() -> list[Ratio]:
    """Field validation: a CN mobile against phonenumbers.parse; a 5-field PIIModel against
    a plain model of 5 str fields."""
    times = best_ns(
        {
            "parse": Case("parse(v, 'CN')", {"parse": phonenumbers.parse, "v": PHONE}),
            "pg phone": Case("Phone(v)", {"Phone": pg.Phone, "v": PHONE}),
            "plain model": Case("M(**d)", {"M": PlainCustomer, "d": CUSTOMER}),
            "pii model": Case("M(**d)", {"M": PIICustomer, "d": CUSTOMER}),
        },
        number=5000,
    )
    return [
        Ratio("pg.Phone(CN mobile) / phonenumbers.parse", times["pg phone"], times["parse"], 0.2),
        Ratio(
            "PIIModel(5 PII fields) / BaseModel(5 str)",
            times["pii model"],
            times["plain model"],
            2.0,
        ),
    ]


SUITES: dict[str, Callable[[], Sequence[Ratio | Quality]]] = {
    "masking": masking,
    "detection": detection,
    "detection_quality": detection_quality,
    "fields": fields,
    "encryption": encryption,
    "tokenization": tokenization,
    "tokens": keyed_tokens_and_vault,
    "consent": consent,
    "retention": retention,
    "epochs": epochs,
    "audit": audit,
    "sharing": sharing,
    "orm": orm,
    "async": aio,
}
