from waha_tui.simulator import Simulator
from waha_tui.waha import WahaClient


async def test_send_text_through_asgi_transport(sim: Simulator, asgi_client: WahaClient) -> None:
    result = await asgi_client.send_text("default", "491234567@c.us", "hello")
    assert result.message_id and result.message_id.startswith("true_491234567@c.us_")
    [msg] = sim.state.sent()
    assert (msg.chat_id, msg.text, msg.id) == ("491234567@c.us", "hello", result.message_id)
