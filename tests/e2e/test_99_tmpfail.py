def test_fail(env):
    env.ensure_isolated("Full")
    assert False, "deliberate"
