from sqlalchemy import text


def test_world_builds(world, engine):
    with engine.connect() as c:
        assert c.execute(text("select count(*) from users")).scalar() == 13
        assert c.execute(text("select count(*) from partners where is_house")).scalar() == 1
