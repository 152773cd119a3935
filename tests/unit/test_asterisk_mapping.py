"""The queue_log → schema v1 mapping, one synthetic queue_log per kind of line."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from streamer.core.events import parse_event
from streamer.sources.asterisk import (
    QueueLogMapper,
    QueueMapError,
    customer_id_from_caller,
    normalise_agent_id,
    parse_queue_map,
)


def mapped(text: str, mapper: QueueLogMapper | None = None) -> list[dict]:
    """The events of a synthetic queue_log, each checked by the pipeline's own schema v1 parser."""
    mapper = mapper or QueueLogMapper()
    events = list(mapper.map_lines(text.strip().splitlines()))
    for event in events:
        parse_event(event)
        assert isinstance(event["ts"], int)
    return events


def brief(events: list[dict]) -> list[tuple]:
    return [
        (e["type"], e["ts"], e.get("call_id") or e.get("agent_id"), e.get("reason") or e.get("state")) for e in events
    ]


def test_a_visit_answered_then_completed_by_the_agent():
    events = mapped("""
1700000000|1699999990.1|sales|NONE|ENTERQUEUE||+15550001111|1
1700000007|1699999990.1|sales|SIP/2001|RINGNOANSWER|5000
1700000012|1699999990.1|sales|SIP/2002|CONNECT|12|1700000010.2|3
1700000132|1699999990.1|sales|SIP/2002|COMPLETEAGENT|12|120|1
""")
    assert brief(events) == [
        ("call.enqueued", 1700000000000, "1699999990.1", None),
        ("call.answered", 1700000012000, "1699999990.1", None),
        ("agent.state", 1700000012000, "2002", "busy"),
        ("call.completed", 1700000132000, "1699999990.1", None),
        ("agent.state", 1700000132000, "2002", "available"),
    ]
    answered, completed = events[1], events[3]
    assert answered["queue"] == "sales" and answered["agent_id"] == "2002"
    assert completed["talk_seconds"] == 120
    # Asterisk's holdtime is the queue wait, not time on hold during the call.
    assert "hold_seconds" not in completed
    assert events[2]["queues"] == ["sales"]


def test_completed_by_the_caller_carries_the_talk_time():
    events = mapped("""
1700000000|u1|sales|NONE|ENTERQUEUE||5550001|1
1700000004|u1|sales|Agent/7|CONNECT|4|u2|4
1700000050|u1|sales|Agent/7|COMPLETECALLER|4|46|1
""")
    assert [e["type"] for e in events] == [
        "call.enqueued",
        "call.answered",
        "agent.state",
        "call.completed",
        "agent.state",
    ]
    assert events[3]["talk_seconds"] == 46 and events[3]["agent_id"] == "7"


@pytest.mark.parametrize(
    ("line", "talk"),
    [
        ("1700000100|u1|sales|SIP/2002|TRANSFER|3001|from-internal|10|90|1", 90),
        ("1700000100|u1|sales|SIP/2002|BLINDTRANSFER|3001|from-internal|10|91|1", 91),
        ("1700000100|u1|sales|SIP/2002|ATTENDEDTRANSFER|BRIDGE|a1b2c3|10|92|1", 92),
        ("1700000100|u1|sales|SIP/2002|ATTENDEDTRANSFER|APP|VoiceMail|10|93|1", 93),
        ("1700000100|u1|sales|SIP/2002|ATTENDEDTRANSFER|LINK|SIP/a-1|SIP/b-2|10|94|1", 94),
        ("1700000100|u1|sales|SIP/2002|ATTENDEDTRANSFER|||10|95|1", 95),
    ],
)
def test_every_transfer_layout_completes_the_call_with_its_talk_time(line, talk):
    events = mapped(line)
    assert [e["type"] for e in events] == ["call.completed", "agent.state"]
    assert events[0]["talk_seconds"] == talk
    assert events[0]["call_id"] == "u1" and events[0]["queue"] == "sales"


def test_abandon_and_the_three_exits():
    events = mapped("""
1700000000|a|sales|NONE|ENTERQUEUE||5550001|1
1700000030|a|sales|NONE|ABANDON|1|1|30
1700000000|t|sales|NONE|ENTERQUEUE||5550002|2
1700000300|t|sales|NONE|EXITWITHTIMEOUT|1|2|300
1700000000|k|sales|NONE|ENTERQUEUE||5550003|3
1700000015|k|sales|NONE|EXITWITHKEY|5|2|3|15
1700000000|e|sales|NONE|ENTERQUEUE||5550004|4
1700000002|e|sales|NONE|EXITEMPTY|1|4|2
""")
    outcomes = [brief([e])[0] for e in events if e["type"] != "call.enqueued"]
    assert outcomes == [
        ("call.abandoned", 1700000030000, "a", None),
        ("call.dequeued", 1700000300000, "t", "timeout"),
        ("call.dequeued", 1700000015000, "k", "keypress"),
        ("call.dequeued", 1700000002000, "e", "other"),
    ]


def test_agent_sessions_and_membership():
    events = mapped("""
1700000000|NONE|NONE|Agent/1001|AGENTLOGIN|SIP/1001-0001
1700000001|NONE|NONE|Agent/1002|AGENTCALLBACKLOGIN|1002@default
1700000002|m1|sales|Local/1003@from-queue/n|ADDMEMBER|
1700000100|m2|sales|Local/1003@from-queue/n|REMOVEMEMBER|
1700000101|NONE|NONE|Agent/1002|AGENTCALLBACKLOGOFF|1002@default|100|Autologoff
1700000102|NONE|NONE|Agent/1001|AGENTLOGOFF|SIP/1001-0001|102
""")
    assert brief(events) == [
        ("agent.state", 1700000000000, "1001", "available"),
        ("agent.state", 1700000001000, "1002", "available"),
        ("agent.state", 1700000002000, "1003", "available"),
        ("agent.state", 1700000100000, "1003", "logged_out"),
        ("agent.state", 1700000101000, "1002", "logged_out"),
        ("agent.state", 1700000102000, "1001", "logged_out"),
    ]
    # Only a line that names a queue says which queue the state is about.
    assert [e.get("queues") for e in events] == [None, None, ["sales"], ["sales"], None, None]


def test_pauses_decide_the_state_after_a_call():
    mapper = QueueLogMapper()
    events = mapped(
        """
1700000000|NONE|sales|Agent/1001|PAUSE|lunch
1700000001|NONE|sales|Agent/1001|UNPAUSE|
1700000002|NONE|NONE|Agent/1001|PAUSEALL|
1700000003|NONE|NONE|Agent/1001|UNPAUSEALL|
1700000010|u1|sales|NONE|ENTERQUEUE||5550001|1
1700000012|u1|sales|Agent/1001|CONNECT|2|u2|2
1700000020|NONE|sales|Agent/1001|PAUSE|after this call
1700000060|u1|sales|Agent/1001|COMPLETECALLER|2|48|1
""",
        mapper,
    )
    states = [e["state"] for e in events if e["type"] == "agent.state"]
    assert states == ["away", "available", "away", "available", "busy", "away", "away"]

    # The pause survives a restart through the state saved beside the read position.
    restarted = QueueLogMapper()
    restarted.restore(mapper.state())
    after_restart = mapped(
        """
1700000100|u3|sales|NONE|ENTERQUEUE||5550002|1
1700000101|u3|sales|Agent/1001|CONNECT|1|u4|1
1700000161|u3|sales|Agent/1001|COMPLETEAGENT|1|60|1
1700000162|NONE|sales|Agent/1001|UNPAUSE|
1700000170|u5|sales|NONE|ENTERQUEUE||5550003|1
1700000171|u5|sales|Agent/1001|CONNECT|1|u6|1
1700000200|u5|sales|Agent/1001|COMPLETEAGENT|1|29|1
""",
        restarted,
    )
    states = [e["state"] for e in after_restart if e["type"] == "agent.state"]
    assert states == ["busy", "away", "available", "busy", "available"]


def test_a_pause_in_another_queue_leaves_the_agent_available_here():
    events = mapped("""
1700000000|NONE|support|Agent/1001|PAUSE|
1700000010|u1|sales|NONE|ENTERQUEUE||5550001|1
1700000012|u1|sales|Agent/1001|CONNECT|2|u2|2
1700000060|u1|sales|Agent/1001|COMPLETECALLER|2|48|1
""")
    assert [e["state"] for e in events if e["type"] == "agent.state"] == ["away", "busy", "available"]


def test_system_ignored_unknown_and_malformed_lines_are_skipped_and_counted():
    mapper = QueueLogMapper()
    text = """
1700000000|NONE|NONE|NONE|QUEUESTART
1700000001|NONE|NONE|NONE|CONFIGRELOAD
1700000002|u1|sales|NONE|ENTERQUEUE||5550001|1
1700000005|u1|sales|SIP/2001|RINGNOANSWER|3000
1700000006|u1|sales|SIP/2001|RINGCANCELED|1000
1700000007|NONE|NONE|Agent/1127|OUTDIAL|Cda880bf7f1
1700000008|NONE|NONE|Agent/1127|OUTANSWER|Cda880bf7f1|COMPLETEAGENT
1700000009|u9|sales|NONE|SOMETHINGNEW|x

not-an-epoch|u1|sales|NONE|ABANDON|1|1|3
inf|u1|sales|NONE|ABANDON|1|1|3
1700000010|u1|sales
1700000011|NONE|NONE|NONE|CONNECT|5|x|1
1700000012|NONE|NONE|NONE|PAUSE|
"""
    events = mapped(text, mapper)
    assert [e["type"] for e in events] == ["call.enqueued"]
    stats = mapper.stats
    assert stats.lines == 14
    accounted = (
        stats.mapped_lines
        + stats.blank
        + stats.malformed
        + sum(stats.system.values())
        + sum(stats.ignored.values())
        + sum(stats.unknown.values())
    )
    assert accounted == stats.lines
    assert stats.mapped_lines == 1
    assert stats.system == Counter({"QUEUESTART": 1, "CONFIGRELOAD": 1})
    assert stats.ignored == Counter({"RINGNOANSWER": 1, "RINGCANCELED": 1})
    assert stats.unknown == Counter({"OUTDIAL": 1, "OUTANSWER": 1, "SOMETHINGNEW": 1})
    assert stats.blank == 1
    assert stats.malformed == 5
    assert len(stats.malformed_examples) == 5
    assert "not an epoch" in stats.malformed_examples[0]
    assert "not an epoch" in stats.malformed_examples[1]
    assert "fewer than 5" in stats.malformed_examples[2]
    summary = stats.summary()
    assert "unknown, skipped 3 (OUTANSWER 1, OUTDIAL 1, SOMETHINGNEW 1)" in summary
    assert "malformed, skipped 5" in summary


def test_event_ids_are_stable_across_re_reads_and_unique_within_a_file():
    text = """
1700000000|u1|sales|NONE|ENTERQUEUE||5550001|1
1700000012|u1|sales|SIP/2002|CONNECT|12|u2|3
1700000132|u1|sales|SIP/2002|COMPLETEAGENT|12|120|1
1700000140|u3|sales|NONE|ENTERQUEUE||5550009|1
1700000150|u3|sales|NONE|ABANDON|1|1|10
"""
    first = [e["event_id"] for e in mapped(text)]
    again = [e["event_id"] for e in mapped(text)]
    assert first == again
    assert len(set(first)) == len(first)
    # After a rotation the same lines sit at other line numbers and offsets: same ids.
    rotated = [e["event_id"] for e in mapped("\n".join(text.strip().splitlines()[3:]))]
    assert rotated == first[-2:]


def test_a_call_entering_the_queue_again_is_a_new_visit_with_the_same_call_id():
    events = mapped("""
1700000000|u1|sales|NONE|ENTERQUEUE||5550001|1
1700000300|u1|sales|NONE|EXITWITHTIMEOUT|1|1|300
1700000301|u1|overflow|NONE|ENTERQUEUE||5550001|1
1700000311|u1|overflow|Agent/9|CONNECT|10|u7|10
1700000320|u1|overflow|Agent/9|COMPLETECALLER|10|9|1
1700000400|u1|sales|NONE|ENTERQUEUE||5550001|1
1700000401|u1|sales|NONE|ABANDON|1|1|1
""")
    visits = [(e["type"], e["queue"]) for e in events if e["type"] != "agent.state"]
    assert visits == [
        ("call.enqueued", "sales"),
        ("call.dequeued", "sales"),
        ("call.enqueued", "overflow"),
        ("call.answered", "overflow"),
        ("call.completed", "overflow"),
        ("call.enqueued", "sales"),
        ("call.abandoned", "sales"),
    ]
    assert {e["call_id"] for e in events if "call_id" in e} == {"u1"}
    assert len({e["event_id"] for e in events}) == len(events)


def test_the_caller_number_only_ever_leaves_as_a_hash():
    number = "+15550001111"
    key = b"site secret"
    with_key = QueueLogMapper(customer_key=key)
    line = f"1700000000|u1|sales|NONE|ENTERQUEUE||{number}|1"
    keyed = mapped(line, with_key)[0]
    unkeyed = mapped(line)[0]
    assert keyed["customer_id"] == customer_id_from_caller(number, key)
    assert unkeyed["customer_id"] == hashlib.sha256(number.encode()).hexdigest()[:32]
    assert keyed["customer_id"] != unkeyed["customer_id"]
    for event in (keyed, unkeyed):
        assert number not in repr(event) and "5550001111" not in repr(event)
    # The event id is not a hash over the number either (it could be reversed by trying numbers).
    other_number = mapped("1700000000|u1|sales|NONE|ENTERQUEUE||+15559999999|1")[0]
    assert other_number["event_id"] == unkeyed["event_id"]
    # An already pseudonymised caller (as in PBX exports) is hashed again, all the same.
    assert mapped("1700000000|u1|sales|NONE|ENTERQUEUE||Ca3592e3eae|1")[0]["customer_id"] != "Ca3592e3eae"


@pytest.mark.parametrize("caller", ["", "anonymous", "Unknown", "PRIVATE", "  "])
def test_withheld_numbers_give_no_customer_id(caller):
    event = mapped(f"1700000000|u1|sales|NONE|ENTERQUEUE||{caller}|1")[0]
    assert "customer_id" not in event


def test_the_wait_asterisk_logged_is_checked_against_the_event_times():
    mapper = QueueLogMapper()
    events = mapped(
        """
1700000000|u1|sales|NONE|ENTERQUEUE||5550001|1
1700000012|u1|sales|SIP/2002|CONNECT|30|u2|3
1700000000|u3|sales|NONE|ENTERQUEUE||5550002|1
1700000021|u3|sales|NONE|ABANDON|1|1|20
1700000100|u4|sales|SIP/2002|CONNECT|99|u5|3
""",
        mapper,
    )
    # The event time stays what the line says: the pipeline measures waits between event times.
    assert events[1]["ts"] == 1700000012000
    # 12 s by event times against 30 s logged is counted; 21 against 20 is within a second; a
    # visit whose ENTERQUEUE this run never saw cannot be checked.
    assert mapper.stats.wait_mismatches == 1
    assert "logged wait 30 s, by event times 12 s" in mapper.stats.wait_mismatch_examples[0]


def test_queue_map_tenant_and_fractional_epochs():
    mapper = QueueLogMapper(parse_queue_map(["IT=it-helpdesk"]), tenant="acme")
    events = mapped(
        """
1700000000.25|u1|IT|NONE|ENTERQUEUE||5550001|1
1700000010|u1|IT|Agent/1|CONNECT|10|u2|1
1700000011|u9|other|NONE|ENTERQUEUE||5550002|1
""",
        mapper,
    )
    assert [e.get("queue") or e.get("queues") for e in events] == [
        "it-helpdesk",
        "it-helpdesk",
        ["it-helpdesk"],
        "other",
    ]
    assert {e["tenant"] for e in events} == {"acme"}
    assert events[0]["ts"] == 1700000000250


@pytest.mark.parametrize("entry", ["IT", "=x", "IT=", "  =  "])
def test_a_bad_queue_map_entry_says_what_is_expected(entry):
    with pytest.raises(QueueMapError, match="expected ASTERISK_QUEUE=QUEUE"):
        parse_queue_map([entry])


@pytest.mark.parametrize(
    ("agent", "agent_id"),
    [
        ("Agent/1127", "1127"),
        ("Local/1127@callback-agent", "1127"),
        ("Local/1003@from-queue/n", "1003"),
        ("SIP/2002", "2002"),
        ("PJSIP/alice", "alice"),
        ("John Smith", "John Smith"),
    ],
)
def test_agent_names_and_interfaces_name_the_same_agent(agent, agent_id):
    assert normalise_agent_id(agent) == agent_id


def test_bytes_and_crlf_lines_map_like_text():
    from_bytes = list(QueueLogMapper().map_lines([b"1700000000|u1|sales|NONE|ENTERQUEUE||5550001|1\r\n"]))
    from_text = mapped("1700000000|u1|sales|NONE|ENTERQUEUE||5550001|1")
    assert from_bytes == from_text
    assert from_bytes[0]["call_id"] == "u1"


# --- transfers as hand-offs, the caller as customer_id ------------------------------------------------

TRANSFER_MAP = {"600@from-internal": "support", "601": "billing"}


@pytest.mark.parametrize(
    ("line", "to_queue"),
    [
        ("1700000100|u1|sales|SIP/2002|BLINDTRANSFER|600|from-internal|10|91|1", "support"),
        ("1700000100|u1|sales|SIP/2002|TRANSFER|600|from-internal|10|90|1", "support"),
        ("1700000100|u1|sales|SIP/2002|BLINDTRANSFER|600|other-context|10|91|1", None),  # another 600
        ("1700000100|u1|sales|SIP/2002|BLINDTRANSFER|601|any-context|10|91|1", "billing"),
        ("1700000100|u1|sales|SIP/2002|BLINDTRANSFER|2001|from-internal|10|91|1", None),  # a person
        ("1700000100|u1|sales|SIP/2002|ATTENDEDTRANSFER|APP|Queue|10|93|1", None),  # names no queue
        ("1700000100|u1|sales|SIP/2002|ATTENDEDTRANSFER|BRIDGE|a1b2c3|10|92|1", None),
    ],
)
def test_a_transfer_to_an_extension_that_is_a_queue_is_a_hand_off(line, to_queue):
    events = mapped(line, QueueLogMapper({"billing": "Billing"} if to_queue == "billing" else None,
                                         transfer_queues=TRANSFER_MAP))
    completed = events[0]
    assert completed["type"] == "call.completed" and completed["talk_seconds"] in (90, 91, 92, 93)
    expected = "Billing" if to_queue == "billing" else to_queue
    assert completed.get("to_queue") == expected


def journey_of(text: str, mapper: QueueLogMapper) -> dict:
    from streamer.core.report import Report

    report = Report()
    for event in mapped(text, mapper):
        report.add_event(parse_event(event))
    return report.to_dict()["queues"]


BLIND_TRANSFER_LOG = """
1700000000|u1|sales|NONE|ENTERQUEUE||+441632960001|1
1700000010|u1|sales|Agent/7|CONNECT|10|b1|2
1700000100|u1|sales|Agent/7|BLINDTRANSFER|600|from-internal|10|90|1
1700000101|u1|support|NONE|ENTERQUEUE||+441632960001|1
1700000131|u1|support|Agent/9|CONNECT|30|b2|2
1700000300|u1|support|Agent/9|COMPLETECALLER|30|169|1
1700000400|u2|sales|NONE|ENTERQUEUE||+441632960001|1
1700000460|u2|sales|NONE|EXITWITHTIMEOUT|1|1|60
1700000465|u2|billing|NONE|ENTERQUEUE||+441632960001|1
1700000470|u2|billing|NONE|ABANDON|1|1|5
"""


def test_a_blind_transfer_into_a_queue_continues_the_callers_journey():
    queues = journey_of(BLIND_TRANSFER_LOG, QueueLogMapper(transfer_queues=TRANSFER_MAP, customer_key=b"k"))
    sales, support, billing = (queues[q]["total"] for q in ("sales", "support", "billing"))
    # u1: sales -> support by the agent's transfer; u2: sales -> billing after a timeout (5 s later).
    assert (sales["handoffs_out"], support["handoffs_in"], billing["handoffs_in"]) == (2, 1, 1)
    assert (sales["journeys"], sales["journeys_with_handoff"], support["journeys"]) == (2, 2, 0)
    assert sales["journey_answered"] == 1 and sales["journey_asa_seconds"] == 40.0  # 10 s in sales + 30 s in support
    assert sales["journey_abandoned"] == 1  # u2 waited 60 + 5 s
    # One customer (the same hashed number), two contacts: the second within 30 minutes.
    assert (sales["contacts_identified"], sales["repeat_contacts"], support["contacts_identified"]) == (2, 1, 0)


def test_without_the_transfer_map_the_transferred_call_starts_a_new_journey():
    queues = journey_of(BLIND_TRANSFER_LOG, QueueLogMapper())
    assert queues["support"]["total"]["journeys"] == 1 and queues["support"]["total"]["handoffs_in"] == 0


def test_the_customer_id_is_a_keyed_hash_of_the_caller_never_the_number():
    events = mapped(BLIND_TRANSFER_LOG, QueueLogMapper(customer_key=b"secret"))
    ids = {e["customer_id"] for e in events if "customer_id" in e}
    assert len(ids) == 1 and "441632960001" not in next(iter(ids))
    assert all("441632960001" not in str(e) for e in events)


def test_a_malformed_line_is_shown_without_the_caller_number():
    mapper = QueueLogMapper()
    mapped("1700000000|NONE|sales|NONE|ENTERQUEUE||+441632960001|1", mapper)
    assert mapper.stats.malformed == 1
    assert "441632960001" not in mapper.stats.summary() and "<caller>" in mapper.stats.summary()
