"""When things happen: cron schedules of sources and the cadences of subscribers."""
