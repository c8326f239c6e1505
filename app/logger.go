package app

import (
	"context"
	"log/slog"
)

// wailsLogger sends Wails' own log lines to the app's structured logger.
type wailsLogger struct{ log *slog.Logger }

func (l wailsLogger) Print(msg string)   { l.log.Info(msg) }
func (l wailsLogger) Trace(msg string)   { l.log.Log(context.Background(), slog.LevelDebug-4, msg) }
func (l wailsLogger) Debug(msg string)   { l.log.Debug(msg) }
func (l wailsLogger) Info(msg string)    { l.log.Info(msg) }
func (l wailsLogger) Warning(msg string) { l.log.Warn(msg) }
func (l wailsLogger) Error(msg string)   { l.log.Error(msg) }
func (l wailsLogger) Fatal(msg string)   { l.log.Error(msg) }
