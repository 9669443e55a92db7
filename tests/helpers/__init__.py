"""What the tests share: composing configs, running the commands, opening stores, fabricating data."""
