"""A database created by an older lgdist (without the delta columns) is
brought up to date by setup(), not broken by it."""

import sqlalchemy as sa

from lgdist.checkpoint.sqlite import SqliteSaver


def test_setup_adds_columns_missing_from_an_older_schema(tmp_path):
    path = tmp_path / "old.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(sa.text(
            "CREATE TABLE lgdist_blobs (thread_id TEXT, checkpoint_ns TEXT, channel TEXT, version TEXT,"
            " type TEXT, blob BLOB, PRIMARY KEY (thread_id, checkpoint_ns, channel, version))"
        ))
    engine.dispose()
    saver = SqliteSaver.from_conn_string(str(path))
    saver.setup()
    columns = {c["name"] for c in sa.inspect(saver.engine).get_columns("lgdist_blobs")}
    assert {"base_version", "level"} <= columns
    config = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    checkpoint = {"v": 1, "id": "1", "ts": "x", "channel_values": {"a": [1]}, "channel_versions": {"a": "1"},
                  "versions_seen": {}, "updated_channels": None}
    saver.put(config, checkpoint, {"step": 0}, {"a": "1"})
    assert saver.get_tuple(config).checkpoint["channel_values"] == {"a": [1]}


def test_rows_with_the_older_inline_values_form_read_as_before(tmp_path):
    # Before the [values, blob channels] form, inline_values held
    # {channel: [version, value]} and {channel: [version]} for an empty one.
    saver = SqliteSaver.from_conn_string(str(tmp_path / "old-inline.db"))
    saver._blob_cache = None  # read the rows, not this process's decoded values
    config = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    checkpoint = {"v": 1, "id": "1", "ts": "x",
                  "channel_values": {"n": 3, "s": "hi", "big": {"k": [1, 2]}},
                  "channel_versions": {"n": "2", "s": "1", "big": "1", "gone": "2"},
                  "versions_seen": {}, "updated_channels": None}  # fmt: skip
    saver.put(config, checkpoint, {"step": 0}, {"n": "2", "s": "1", "big": "1", "gone": "2"})
    old = '{"n": ["2", 3], "s": ["1", "hi"], "gone": ["2"]}'
    with saver.engine.begin() as conn:
        conn.execute(sa.text("UPDATE lgdist_checkpoints SET inline_values = :v"), {"v": old})
    assert saver.get_tuple(config).checkpoint["channel_values"] == {"n": 3, "s": "hi", "big": {"k": [1, 2]}}
