package store

import (
	"context"
	"time"

	gormlogger "gorm.io/gorm/logger"
)

// quietErrors passes gorm's slow-query warnings on but drops its per-query
// error lines: the store classifies and logs failures itself (fail), and an
// expected conflict such as a taken app name is not an error to log.
type quietErrors struct{ gormlogger.Interface }

func (q quietErrors) LogMode(l gormlogger.LogLevel) gormlogger.Interface {
	return quietErrors{q.Interface.LogMode(l)}
}

func (q quietErrors) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	if err != nil {
		return
	}
	q.Interface.Trace(ctx, begin, fc, nil)
}
