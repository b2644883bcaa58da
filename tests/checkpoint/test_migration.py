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
