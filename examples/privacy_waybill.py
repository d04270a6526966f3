"""A privacy waybill (隐私面单): the courier receives the recipient's masked name, the
address, and a token in place of the phone, which the shop resolves when the courier calls.

Run it: ``python examples/privacy_waybill.py``. It makes a throwaway store, a courier key
pair (in real life the courier keeps its private key and gives the shop its public JWK),
shares one order, and shows what each side sees.
"""

from __future__ import annotations

import json
import tempfile
from datetime import date
from pathlib import Path

from joserfc import jwe
from joserfc.jwk import ECKey

import piiguard as pg
from piiguard.keys import LocalKEK


class Order(pg.PIIModel):
    order_id: str
    receiver: pg.PersonName
    phone: pg.Phone
    address: pg.Address


def main() -> dict[str, object]:
    """Share one order with the courier; return what the courier read."""
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        kek = LocalKEK.generate(home / "kek.key")
        with pg.Guard.open(f"sqlite:///{home / 'shop.db'}", kek=kek) as guard:
            # delivery performs the contract with the customer: no consent needed to share
            guard.consent.register(
                pg.Purpose("delivery", basis="contract", kinds={"person_name", "address"})
            )
            courier_key = ECKey.generate_key("P-256")  # the courier's; the shop never sees it
            guard.sharing.register(
                pg.Recipient(
                    "sf-express",
                    public_key=courier_key.as_dict(private=False),
                    purposes={"delivery"},
                    fields={
                        "order_id": "clear",
                        "receiver": "masked",
                        "phone": "token",
                        "address": "clear",
                    },
                    assessed_until=date(2099, 12, 31),
                    contract=pg.Contract("SF-2026-001", date(2099, 12, 31)),
                )
            )
            # providing to a processor needs an impact assessment covering it (PIPL Art. 55)
            guard.records.assessment(
                "delivery",
                risks=["couriers see labels", "labels are thrown away"],
                measures=["masked name", "phone as a token the shop resolves"],
                author="dpo",
            )
            order = Order(
                order_id="o-1001",
                receiver="张三丰",
                phone="13812345678",
                address="北京市朝阳区建国路88号",
            )
            waybill = guard.share(
                order, to="sf-express", purpose="delivery", subject="u1", actor="svc:waybill"
            )

            # the courier's side: its private key opens the JWE
            opened = jwe.decrypt_compact(
                waybill, courier_key, algorithms=["ECDH-ES+A256KW", "A256GCM"]
            )
            printed = json.loads(opened.plaintext or b"{}")["fields"]
            print("on the waybill:", printed)

            # the courier calls the shop with the token; the shop connects the call
            guard.consent.register(pg.Purpose("call_connect", basis="contract", kinds={"phone"}))
            number = guard.vault.detokenize(
                printed["phone"], actor="svc:call-centre", purpose="call_connect"
            )
            print("the call centre dials a number ending", number[-4:])
            print(
                "who received u1's data:", [s.recipient for s in guard.sharing.recipients_of("u1")]
            )
            return dict(printed)


if __name__ == "__main__":
    main()
