/*
 * gemm_bound.c: the benchmark's two pure-OpenBLAS measurements.
 *
 *   gemm_bound replay SPEC [--data FILE] [--threads T] [--ms MS]
 *       runs one training step's matrix products and nothing else, again
 *       and again for MS milliseconds and at least 5 times (after two
 *       untimed passes), and
 *       prints `gemm steps N ms/step X gflop/step G`: the GEMM-only bound
 *       of a network, the time a trainer would take if everything but its
 *       products were free. SPEC (written by bench/bench.py from a trace of
 *       the gradc trainer, bench/gemm_trace.c) is a line `span S align A`,
 *       then one line per product, in order:
 *           transA transB M N K alpha a lda b ldb beta c ldc
 *       (N or T; a, b, c offsets in floats into one buffer of S floats
 *       whose start sits A bytes past a 64-byte boundary, as the trainer's
 *       arena did), so the products read and write the same layout.
 *       --data FILE: the buffer's first values, S floats (the trainer's
 *       arena, bench/gemm_trace.c's FILE.arena), else random ones in
 *       [-0.5, 0.5).
 *
 *   gemm_bound peak [--threads T] [--ms MS]
 *       the machine's sgemm peak: square row-major products of a few
 *       sizes, each repeated for MS milliseconds; prints each size's
 *       GFLOP/s and `peak gflops P`, the best.
 *
 * Both print `corename NAME` first: the OpenBLAS kernels in use (set by
 * OPENBLAS_CORETYPE, read when the library loads).
 */
#include <cblas.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    char ta, tb;
    long m, n, k, lda, ldb, ldc, a, b, c;
    float alpha, beta;
} Gemm;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *msg, const char *arg)
{
    fprintf(stderr, "gemm_bound: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
    exit(2);
}

/* Small values in [-0.5, 0.5): no denormals, no overflow over many passes. */
static void fill(float *p, long n)
{
    unsigned long s = 88172645463325252UL;
    for (long i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        p[i] = (float)((double)(s >> 11) / 9007199254740992.0 - 0.5);
    }
}

static float *buffer(long floats, long align)
{
    size_t bytes = ((size_t)floats * sizeof(float) + (size_t)align + 63) / 64 * 64;
    char *p = aligned_alloc(64, bytes);
    if (!p)
        die("out of memory", NULL);
    float *f = (float *)(p + align);
    fill(f, floats);
    return f;
}

static enum CBLAS_TRANSPOSE trans(char t) { return t == 'T' ? CblasTrans : CblasNoTrans; }

static void run_step(float *base, const Gemm *g, int n)
{
    for (int i = 0; i < n; i++)
        cblas_sgemm(CblasRowMajor, trans(g[i].ta), trans(g[i].tb), (blasint)g[i].m,
                    (blasint)g[i].n, (blasint)g[i].k, g[i].alpha, base + g[i].a,
                    (blasint)g[i].lda, base + g[i].b, (blasint)g[i].ldb, g[i].beta,
                    base + g[i].c, (blasint)g[i].ldc);
}

/* The extent in floats of a row-major rows x cols operand with leading dimension ld. */
static long extent(long rows, long cols, long ld) { return rows ? (rows - 1) * ld + cols : 0; }

static int replay(const char *path, const char *data, double ms)
{
    FILE *f = fopen(path, "r");
    if (!f)
        die(strerror(errno), path);
    long span, align;
    if (fscanf(f, " span %ld align %ld", &span, &align) != 2 || span <= 0 || align < 0 ||
        align >= 64 || align % 4)
        die("expected `span S align A` first", path);
    int n = 0, cap = 64;
    Gemm *g = malloc(sizeof *g * (size_t)cap);
    double flop = 0;
    for (;;) {
        Gemm x;
        int r = fscanf(f, " %c %c %ld %ld %ld %f %ld %ld %ld %ld %f %ld %ld", &x.ta, &x.tb, &x.m,
                       &x.n, &x.k, &x.alpha, &x.a, &x.lda, &x.b, &x.ldb, &x.beta, &x.c, &x.ldc);
        if (r == EOF)
            break;
        if (r != 13)
            die("bad product line", path);
        long ar = x.ta == 'T' ? x.k : x.m, ac = x.ta == 'T' ? x.m : x.k;
        long br = x.tb == 'T' ? x.n : x.k, bc = x.tb == 'T' ? x.k : x.n;
        if (x.a < 0 || x.b < 0 || x.c < 0 || x.a + extent(ar, ac, x.lda) > span ||
            x.b + extent(br, bc, x.ldb) > span || x.c + extent(x.m, x.n, x.ldc) > span)
            die("a product reaches outside the span", path);
        if (n == cap)
            g = realloc(g, sizeof *g * (size_t)(cap *= 2));
        g[n++] = x;
        flop += 2.0 * (double)x.m * (double)x.n * (double)x.k;
    }
    fclose(f);
    if (n == 0)
        die("no products", path);
    float *base = buffer(span, align);
    if (data) {
        FILE *d = fopen(data, "rb");
        if (!d)
            die(strerror(errno), data);
        if (fread(base, sizeof(float), (size_t)span, d) != (size_t)span)
            die("shorter than the span", data);
        fclose(d);
    }
    run_step(base, g, n);
    run_step(base, g, n);
    long steps = 0;
    double t0 = now_ms(), t;
    do {
        run_step(base, g, n);
        steps++;
        t = now_ms() - t0;
    } while (t < ms || steps < 5);
    printf("gemm steps %ld ms/step %.6g gflop/step %.6g products %d\n", steps, t / (double)steps,
           flop / 1e9, n);
    return 0;
}

static int peak(double ms)
{
    static const long sizes[] = {256, 512, 1024, 2048};
    double best = 0;
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        long n = sizes[s];
        float *a = buffer(n * n, 0), *b = buffer(n * n, 0), *c = buffer(n * n, 0);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)n, (blasint)n, (blasint)n,
                    1.0f, a, (blasint)n, b, (blasint)n, 0.0f, c, (blasint)n);
        /* The best single product: the least disturbed by other work. */
        double fastest = 1e300, t0 = now_ms();
        long reps = 0;
        do {
            double t1 = now_ms();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)n, (blasint)n,
                        (blasint)n, 1.0f, a, (blasint)n, b, (blasint)n, 0.0f, c, (blasint)n);
            double dt = now_ms() - t1;
            if (dt < fastest)
                fastest = dt;
            reps++;
        } while (now_ms() - t0 < ms || reps < 3);
        double gflops = 2.0 * (double)n * (double)n * (double)n / (fastest * 1e6);
        printf("peak size %ld gflops %.4g\n", n, gflops);
        if (gflops > best)
            best = gflops;
        free(a); /* align 0: the pointer aligned_alloc gave */
        free(b);
        free(c);
    }
    printf("peak gflops %.4g\n", best);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "replay") && strcmp(argv[1], "peak")))
        die("usage: gemm_bound replay SPEC [--data FILE] | peak [--threads T] [--ms MS]", NULL);
    int is_replay = !strcmp(argv[1], "replay"), i = 2;
    const char *spec = NULL, *data = NULL;
    if (is_replay) {
        if (argc < 3)
            die("replay: which SPEC?", NULL);
        spec = argv[i++];
    }
    int threads = 1;
    double ms = 300;
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ms") && i + 1 < argc)
            ms = atof(argv[++i]);
        else if (!strcmp(argv[i], "--data") && i + 1 < argc && is_replay)
            data = argv[++i];
        else
            die("unknown flag", argv[i]);
    }
    if (threads < 1 || ms <= 0)
        die("--threads and --ms must be positive", NULL);
    openblas_set_num_threads(threads);
    printf("corename %s\n", openblas_get_corename());
    return is_replay ? replay(spec, data, ms) : peak(ms);
}
