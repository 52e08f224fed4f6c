"""The twin's OPC UA server (real asyncua server on 127.0.0.1, real asyncua client)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import numpy as np
import polars as pl
import pytest
from asyncua import Client, ua
from live_testutil import SIM_START, generated, served

from twin.historian import TAG_NAMES, TAG_UNITS
from twin.live.server import NAMESPACE_URI, Injection, PlantServerThread, SimClock, _TwinHistory, unece_unit_id


def test_server_serves_the_twin_readings(live_plan):
    clock = SimClock.starting_now(SIM_START, speed=3600.0)
    with PlantServerThread(live_plan, clock, port=0, history_window_s=3 * 86_400.0) as srv:
        tags = [f"BR-101.{s}" for s in TAG_NAMES]

        async def browse_and_subscribe():
            async with Client(srv.endpoint, watchdog_intervall=30) as c:
                ns = await c.get_namespace_index(NAMESPACE_URI)
                temp = c.get_node(ua.NodeId("BR-101.TEMP.PV", ns))
                eu = await (await temp.get_child(["0:EngineeringUnits"])).read_value()
                level = await temp.read_attribute(ua.AttributeIds.AccessLevel)
                units = {}
                for s in TAG_NAMES:
                    node = c.get_node(ua.NodeId(f"BR-101.{s}", ns))
                    units[s] = (await (await node.get_child(["0:EngineeringUnits"])).read_value()).DisplayName.Text
                # one Read request: the server answers it between two publications (consistent)
                *batch, published = await c.read_values(
                    [c.get_node(ua.NodeId(f"BR-101.Batch.{n}", ns)) for n in ("Id", "Operation", "Phase")]
                    + [c.get_node(ua.NodeId("Plant.PublishedUntil", ns))]
                )
                # every published reading of a subscription, with its source timestamp and status
                sub = await c.create_subscription(50, None, queue_maxsize=0)
                flt = ua.DataChangeFilter(Trigger=ua.DataChangeTrigger.StatusValueTimestamp)
                await sub.create_monitored_items(
                    [
                        ua.MonitoredItemCreateRequest(
                            ItemToMonitor=ua.ReadValueId(NodeId=temp.nodeid, AttributeId=ua.AttributeIds.Value),
                            MonitoringMode=ua.MonitoringMode.Reporting,
                            RequestedParameters=ua.MonitoringParameters(ClientHandle=1, QueueSize=0, Filter=flt),
                        )
                    ]
                )
                got = []
                t0 = time.monotonic()
                while time.monotonic() - t0 < 2.0:
                    ev = await sub.next_event(timeout=0.5)
                    if ev is not None and hasattr(ev, "data"):
                        dv = ev.data.monitored_item.Value
                        got.append((dv.SourceTimestamp, dv.Value.Value, dv.StatusCode.value))
                await sub.delete()
                return eu, level.Value.Value, units, batch, published, got

        eu, level, units, batch, published, got = asyncio.run(browse_and_subscribe())
        history = served(srv.endpoint, tags)
        sim_now = dt.datetime.fromtimestamp(clock.now_ms() / 1000, dt.UTC)

    # node attributes: engineering unit (UNECE code where there is one), historized
    assert eu.DisplayName.Text == "degC" and eu.UnitId == unece_unit_id("CEL") == 0x43454C
    assert units == {s: TAG_UNITS[s] for s in TAG_NAMES}
    assert level & ua.AccessLevel.HistoryRead.mask and level & ua.AccessLevel.CurrentRead.mask
    # MES context equals the plan's batch record at the published time
    t_h = (published - dt.datetime(2026, 1, 1, tzinfo=dt.UTC)).total_seconds() / 3600.0
    assert tuple(batch) == live_plan.batch_state("BR-101", t_h)
    # history = the twin's own readings over the served window: values, statuses, timestamps
    truth = generated(live_plan, "BR-101", range(0, 4))
    lo, hi = history["ts"].min(), history["ts"].max()
    assert lo == dt.datetime(2026, 1, 1, 0, 0, 0, 462000, tzinfo=dt.UTC)  # first reading of the site
    assert hi <= sim_now and (sim_now - hi).total_seconds() < 10 * 3600  # up to (nearly) now at 1 h/s
    # (each tag was read at its own moment: compare over each tag's own served range)
    rng = history.group_by("tag").agg(pl.col("ts").min().alias("lo"), pl.col("ts").max().alias("hi"))
    expect = (
        truth.join(rng, on="tag")
        .filter(pl.col("ts").is_between(pl.col("lo"), pl.col("hi")))
        .select("tag", "ts", "value", "quality")
    )
    assert history.height == expect.height > 19 * 1440
    assert history.select("tag", "ts", "value", "quality").sort("tag", "ts").equals(expect.sort("tag", "ts"))
    assert set(history["quality"].unique().to_list()) == {192, 64, 0}  # Good, Uncertain, Bad all served
    assert set(history["status"].unique().to_list()) == {0, 0x40000000, 0x80000000}
    # the subscription delivered every reading in order (trigger on timestamps: repeated values too)
    assert len(got) >= 30
    sub = pl.DataFrame(
        {"ts": [g[0] for g in got], "value": [g[1] for g in got]},
        schema={"ts": pl.Datetime("us", "UTC"), "value": pl.Float64},
    )
    temp_truth = (
        truth.filter(pl.col("tag") == "BR-101.TEMP.PV")
        .filter(pl.col("ts").is_between(sub["ts"].min(), sub["ts"].max()))
        .select("ts", "value")
    )
    assert sub.equals(temp_truth)


def test_history_read_pages_and_reads_backward(live_plan):
    clock = SimClock.starting_now(SIM_START, speed=1.0)  # clock standing (nearly) still
    srv = PlantServerThread(live_plan, clock, port=0, history_window_s=86_400.0)
    with srv:
        srv.server._server.iserver.history_manager.storage.max_history_data_response_size = 100

        async def reads():
            async with Client(srv.endpoint, watchdog_intervall=30) as c:
                ns = await c.get_namespace_index(NAMESPACE_URI)
                node = c.get_node(ua.NodeId("BR-101.PH.PV", ns))
                fwd = await node.read_raw_history(SIM_START - dt.timedelta(hours=6), SIM_START)  # 4 pages
                details = ua.ReadRawModifiedDetails(
                    IsReadModified=False,
                    StartTime=SIM_START,
                    EndTime=SIM_START - dt.timedelta(hours=1),
                    NumValuesPerNode=10,
                )
                back = (await node.history_read(details)).HistoryData.DataValues
                before = await node.read_raw_history(SIM_START - dt.timedelta(days=3), SIM_START - dt.timedelta(days=2))
                return fwd, back, before

        fwd, back, before = asyncio.run(reads())
        assert isinstance(srv.server._server.iserver.history_manager.storage, _TwinHistory)
    ts = [d.SourceTimestamp for d in fwd]
    assert len(fwd) == 360 and ts == sorted(ts) and len(set(ts)) == 360  # continuation points followed
    bts = [d.SourceTimestamp for d in back]
    assert len(back) == 10 and bts == sorted(bts, reverse=True) and bts[0] == ts[-1]  # newest first
    assert before == []  # outside the history window (and before the site start)
    truth = generated(live_plan, "BR-101", range(0, 2)).filter(pl.col("tag") == "BR-101.PH.PV")
    got = pl.DataFrame(
        {"ts": ts, "value": [d.Value.Value for d in fwd]}, schema={"ts": pl.Datetime("us", "UTC"), "value": pl.Float64}
    )
    assert got.equals(truth.filter(pl.col("ts").is_between(got["ts"].min(), got["ts"].max())).select("ts", "value"))
    assert np.all(np.diff(got["ts"].dt.epoch("ms").to_numpy()) > 59_000)  # one reading per minute


def test_injected_deviation_is_served_live_and_in_history(live_plan):
    """An injected offset (ramped) changes exactly the readings after its start, in the
    subscription and in HistoryRead alike; the published record cannot be rewritten."""
    clock = SimClock.starting_now(SIM_START, speed=3600.0)
    with PlantServerThread(live_plan, clock, port=0, history_window_s=3 * 86_400.0) as srv:
        start_ms = clock.now_ms() + 1_800_000  # 30 simulated minutes ahead
        inj = Injection("BR-101", "TEMP.PV", 3.0, start_ms, start_ms + 4 * 3_600_000, ramp_s=3600.0)
        srv.inject(inj)
        with pytest.raises(ValueError, match="never rewritten"):
            srv.inject(Injection("BR-101", "TEMP.PV", 1.0, clock.now_ms() - 60_000))
        with pytest.raises(ValueError, match="not served"):
            srv.inject(Injection("BR-999", "TEMP.PV", 1.0, start_ms))
        while clock.now_ms() < start_ms + 6 * 3_600_000:
            time.sleep(0.2)
        history = served(srv.endpoint, ["BR-101.TEMP.PV", "BR-101.TEMP.SP"])
    truth = generated(live_plan, "BR-101", range(0, 4)).filter(
        pl.col("tag").is_in(["BR-101.TEMP.PV", "BR-101.TEMP.SP"])
    )
    both = history.join(truth, on=["tag", "ts"], suffix="_twin")
    assert both.height == history.height
    diff = (both["value"] - both["value_twin"]).to_numpy()
    ms = both["ts"].dt.epoch("ms").to_numpy()
    pv = (both["tag"] == "BR-101.TEMP.PV").to_numpy()
    expect = np.where(pv, inj.delta(ms), 0.0)
    np.testing.assert_allclose(diff, expect, atol=1e-9)
    assert diff[pv].max() == pytest.approx(3.0) and (diff[pv] > 0).sum() > 200  # ramped to the full offset
    assert Injection.parse("BR-101.TEMP.PV:+2.5:3600:7200:600", 1_000) == Injection(
        "BR-101", "TEMP.PV", 2.5, 3_601_000, 10_801_000, 600.0
    )
    with pytest.raises(ValueError, match="unknown tag suffix"):
        Injection.parse("BR-101.NOPE:+1:0", 0)
