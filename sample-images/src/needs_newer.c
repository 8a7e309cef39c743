/* Linked against the newer libgreet: needs greet_loudly@GREET_2, which the image's older
   libgreet.so.1 lacks, so the loader refuses it: version `GREET_2' not found. */
void greet_loudly(const char *name);

int main(void) {
    greet_loudly("world");
    return 0;
}
