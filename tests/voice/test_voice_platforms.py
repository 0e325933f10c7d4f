"""Voice notes end to end through the real adapters: Telegram (getFile, download), WhatsApp (OGG)
and MMS (AMR) behind Twilio's authenticated, redirected media URLs; the bot gets the transcript
and the person one answer."""

from __future__ import annotations

from fakes.telegram import payload as tg_payload
from fakes.twilio import payload as tw_payload
from tests.harness import eventually, platform_bridge
from tests.voice.helpers import voice_settings

PERSON = "whatsapp:+15551230001"


def environment(speech, tmp_path, **more: str) -> dict[str, str]:
    settings = voice_settings(speech)
    env = {name.upper(): str(value) for name, value in settings.items()}
    return env | {"DATA_DIR": str(tmp_path / "data")} | more


def relayed(ocs) -> list[str]:
    return [c.json["message"] for c in ocs.calls if c.path.endswith("/incoming_message")]


async def test_telegram_voice_note_reaches_the_bot_as_its_transcript(tmp_path, tg, ocs, speech, notes):
    async with platform_bridge(tmp_path / "bridge.db", ocs=ocs, tg=tg, **environment(speech, tmp_path)) as h:
        update = tg_payload("voice")
        tg.add_file(update["message"]["voice"]["file_id"], notes["time"].ogg, "voice/file_1.oga")
        await h.deliver_update(update)
        await tg.wait_for(lambda: tg.texts(42) == ["bot: what time is it"])
        await h.idle()
        assert tg.texts(42) == ["bot: what time is it"] and relayed(ocs) == ["what time is it"]
        assert speech.heard == ["what time is it"] and tg.downloads == ["voice/file_1.oga"]


async def test_telegram_voice_note_answered_in_voice(tmp_path, tg, ocs, speech, notes):
    env = environment(speech, tmp_path, VOICE_REPLIES="reciprocal")
    async with platform_bridge(tmp_path / "bridge.db", ocs=ocs, tg=tg, **env) as h:
        update = tg_payload("voice")
        tg.add_file(update["message"]["voice"]["file_id"], notes["time"].ogg, "voice/file_2.oga")
        await h.deliver_update(update)
        await tg.wait_for(lambda: tg.calls("sendVoice"))
        await h.idle()
        assert tg.texts(42) == [] and len(tg.calls("sendVoice")) == 1


async def test_whatsapp_ogg_and_mms_amr_notes_reach_the_bot_as_their_transcripts(
    tmp_path, tw, ocs, speech, notes
):
    env = environment(speech, tmp_path, TWILIO_FROM_NUMBER="+15557654321")
    async with platform_bridge(tmp_path / "bridge.db", ocs=ocs, tw=tw, **env) as h:
        ogg = tw.add_media(notes["time"].ogg, "audio/ogg")
        await h.deliver_form(
            tw_payload("whatsapp_image", MediaUrl0=ogg, MediaContentType0="audio/ogg", Body="")
        )
        amr = tw.add_media(notes["hours"].amr, "audio/amr")
        mms = tw_payload("sms", NumMedia="1", MediaUrl0=amr, MediaContentType0="audio/amr", Body="")
        await h.deliver_form(mms)
        await eventually(lambda: len(tw.sent()) == 2)
        await h.idle()
        assert tw.bodies(PERSON) == ["bot: what time is it"]
        assert tw.bodies(mms["From"]) == [f"bot: {notes['hours'].phrase}"]
        assert sorted(relayed(ocs)) == sorted(["what time is it", notes["hours"].phrase])
        assert len(tw.downloads) == 2  # fetched behind Twilio's redirect, once each
        assert sorted(c.filename for c in speech.transcriptions) == [
            "voice.ogg",
            "voice.ogg",
        ]  # AMR converted
