#ifndef C_MALLOC_COUNTER_H
#define C_MALLOC_COUNTER_H

/// Calls to malloc in this process so far, on every thread (the test executable's malloc counts, then hands
/// over to glibc's). Swift allocates every array buffer and class instance through malloc. Calls made by
/// OpenBLAS itself (its small-matrix sgemm kernels take a scratch buffer per call) are counted apart.
long malloc_call_count(void);

/// Calls to malloc made directly from inside libopenblas (told apart only while classifying).
long openblas_malloc_call_count(void);

/// Turns the telling apart of OpenBLAS's calls on (1) or off (0); it costs a dladdr per malloc.
void malloc_counter_classify_callers(int on);

#endif
