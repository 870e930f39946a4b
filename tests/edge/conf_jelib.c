/*
 * conf_jelib.c - helper of conf.sh: stands for libjemalloc where it is not
 * installed.  Like jemalloc it defines malloc_conf weak, which makes the
 * linker export a program's own definition from the executable, so that a
 * preloaded alloy finds it.
 */
__attribute__((weak)) const char *malloc_conf;
