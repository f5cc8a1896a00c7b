"""The local mail sink and webhook receiver that `smartgrid up` starts when no real ones are configured."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import aiohttp
import aiosmtplib
import pytest

from local.servers.smtp import mail_sink, read_mail, without_password
from local.servers.webhook import WebhookReceiver, read_webhooks
from shared.notify.signing import SIGNATURE_HEADER, sign

pytestmark = pytest.mark.integration


async def test_the_mail_sink_keeps_each_message_in_a_maildir(tmp_path: Path) -> None:
    with mail_sink(None, tmp_path) as url:
        assert url.startswith("smtp://127.0.0.1:")
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "a@x.example", "b@x.example", "hello"
        message.set_content("body text")
        await aiosmtplib.send(message, hostname="127.0.0.1", port=int(url.rsplit(":", 1)[1]),
                              recipients=["b@x.example", "c@x.example"])
    [stored] = read_mail(tmp_path)
    assert stored["Subject"] == "hello" and stored["Delivered-To"] == "b@x.example, c@x.example"
    assert stored.get_content().strip() == "body text"
    assert (tmp_path / "mail" / "new").is_dir()


def test_a_configured_smtp_url_is_used_as_it_is(tmp_path: Path) -> None:
    with mail_sink("smtp://user:pw@mail.example:587", tmp_path) as url:
        assert url == "smtp://user:pw@mail.example:587"
    assert read_mail(tmp_path) == []
    assert without_password(url) == "smtp://user:***@mail.example:587"
    assert without_password("smtp://127.0.0.1:25") == "smtp://127.0.0.1:25"


async def test_the_webhook_receiver_refuses_bad_signatures_and_records_everything(tmp_path: Path) -> None:
    receiver = WebhookReceiver("secret", tmp_path)
    url = await receiver.start()
    body = b'{"alert_id": "a-1"}'
    try:
        async with aiohttp.ClientSession() as session:
            for headers, status in [
                ({SIGNATURE_HEADER: sign("secret", body)}, 200),
                ({SIGNATURE_HEADER: sign("other", body)}, 401),
                ({}, 401),
            ]:
                async with session.post(url, data=body, headers=headers) as response:
                    assert response.status == status
            await receiver.stop()
            with pytest.raises(aiohttp.ClientConnectionError):
                await session.post(url, data=body)
            assert await receiver.start() == url, "the same port after a restart"
    finally:
        await receiver.stop()
    records = read_webhooks(tmp_path)
    assert [record["valid"] for record in records] == [True, False, False]
    assert records[0]["body"] == {"alert_id": "a-1"} and records[0]["error"] is None
    assert "expected the HMAC-SHA256" in records[1]["error"] and "found none" in records[2]["error"]
