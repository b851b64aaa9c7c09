-- The connection's thread budget; numpy work started on the connection's behalf uses it too.
SELECT current_setting('threads')::INTEGER AS threads;
