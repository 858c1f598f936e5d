/*
 * progress.c: the trainer's progress bar on a terminal.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "train.h"

void bar_start(Progress *p, long first, long total, double minutes)
{
    double now = rt_now_ms();
    *p = (Progress){.on = isatty(fileno(stderr)) && !getenv("GRADC_NO_PROGRESS"),
                    .first = first,
                    .total = total,
                    .limit_ms = minutes * 60000,
                    .t0 = now,
                    .drawn = now,
                    .loss = NAN};
}

/* "1:05" or "2:01:05". */
static void format_time(char *buf, size_t n, double seconds)
{
    if (!(seconds < 1e8)) {
        snprintf(buf, n, "?");
        return;
    }
    long s = (long)(seconds + 0.5);
    if (s >= 3600)
        snprintf(buf, n, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(buf, n, "%ld:%02ld", s / 60, s % 60);
}

void bar_draw(Progress *p, long n)
{
    double now = rt_now_ms(), secs = (now - p->t0) / 1000;
    double rate = secs > 0 ? (double)(n - p->first) / secs : 0;
    /* How far along: by steps, or by the clock if that ends the run first. */
    double done = (double)(n - p->first) / (double)(p->total - p->first);
    if (p->limit_ms > 0 && (now - p->t0) / p->limit_ms > done)
        done = fmin((now - p->t0) / p->limit_ms, 1);
    char bar[21], eta[32], steps[64];
    for (int i = 0; i < 20; i++)
        bar[i] = i < (int)(20 * done) ? '#' : '.';
    bar[20] = '\0';
    format_time(eta, sizeof eta, done > 0 ? secs * (1 - done) / done : INFINITY);
    if (p->total == LONG_MAX)
        snprintf(steps, sizeof steps, "%ld", n);
    else
        snprintf(steps, sizeof steps, "%ld/%ld", n, p->total);
    if (p->loss_n) {
        p->loss = p->loss_sum / (double)p->loss_n;
        p->loss_sum = 0;
        p->loss_n = 0;
    }
    /* \033[K erases what a longer previous bar left at the end of the line. */
    fprintf(stderr, "\r[%s] %3d%%  %s steps  %.*f steps/s  ETA %s  loss %.4g\033[K", bar,
            (int)(100 * done), steps, rate < 100 ? 1 : 0, rate, eta, p->loss);
    p->shown = 1;
    p->drawn = now;
}

void bar_tick(Progress *p, long n, double loss)
{
    if (!p->on)
        return;
    p->loss_sum += loss;
    p->loss_n++;
    if (rt_now_ms() - p->drawn >= 100)
        bar_draw(p, n);
}

void bar_clear(Progress *p)
{
    if (p->shown)
        fputs("\r\033[K", stderr);
    p->shown = 0;
}

/* The finished bar stays on the terminal, on a line of its own. */
void bar_end(Progress *p, long n)
{
    if (!p->on)
        return;
    bar_draw(p, n);
    fputc('\n', stderr);
    p->shown = 0;
}
