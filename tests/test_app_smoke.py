from tests.apptest import app, texts


def test_logged_out_sees_login(db):
    at = app()
    assert not at.exception
    assert "Reseller Console" in texts(at)


def test_login_flow(world):
    at = app()
    at.text_input(key="login_email").input("staff-a@test.example")
    at.text_input(key="login_password").input("correct-horse-battery-staple")
    at.button[0].click().run()
    assert not at.exception
    assert at.session_state["auth_user_id"] == world.a.staff.user_id
    assert "Welcome, Staff a" in texts(app(world.a.staff))
